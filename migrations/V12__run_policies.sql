-- jobmgr schema, version 12: run policies.
--
-- Retries: a failed attempt that its type tries again leaves the JobRun
-- row (which always shows the current or last attempt) for a row here,
-- so every earlier attempt keeps its start, end, error and counts. A
-- table, not a JSON array in JobRun: the row that the claim and every
-- listing read stays as small as before, the history is plain rows for
-- sqlite3, and deleting a run (retention, prune) takes its attempts with
-- it through ON DELETE CASCADE.
CREATE TABLE JobRunAttempt (
    jobRunId          INTEGER NOT NULL REFERENCES JobRun (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    startedAt         TEXT,
    finishedAt        TEXT    NOT NULL,
    error             TEXT,
    errorContext      TEXT,
    entitiesProcessed INTEGER NOT NULL DEFAULT 0,
    outcomeSummary    TEXT    NOT NULL DEFAULT '{}',
    -- When the next attempt was due, as decided when this one failed.
    retryAt           TEXT,
    PRIMARY KEY (jobRunId, attempt)
) WITHOUT ROWID;

-- Which attempt wrote a log line (earlier rows: the first).
ALTER TABLE JobLog ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
