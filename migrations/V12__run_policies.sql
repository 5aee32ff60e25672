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

-- Limits: the claim of a worker whose types have max_running or groups
-- (or are paused) asks for the queued runs of each type it may start, one
-- probe of this index per type, so runs waiting behind a limit cost the
-- claim nothing however many there are. The plain claim (no limits) keeps
-- using JobRun_queue.
CREATE INDEX JobRun_queue_type ON JobRun (jobName, priority DESC, id) WHERE status = 'QUEUED';

-- Paused job types: their queued runs wait, the others run.
CREATE TABLE JobTypePause (
    jobName  TEXT PRIMARY KEY,
    pausedAt TEXT NOT NULL
) WITHOUT ROWID;

-- Unique runs: while a run with a key waits or runs, no second run with
-- the same key can be inserted (enqueueing returns the first instead).
ALTER TABLE JobRun ADD COLUMN uniqueKey TEXT;
CREATE UNIQUE INDEX JobRun_unique ON JobRun (uniqueKey)
    WHERE uniqueKey IS NOT NULL AND status IN ('SCHEDULED', 'WAITING', 'QUEUED', 'RUNNING');

-- Dependencies: a run enqueued --after others waits as WAITING until all
-- of them COMPLETED. Only existing runs can be named, so there is no cycle.
CREATE TABLE JobRunDependency (
    runId     INTEGER NOT NULL REFERENCES JobRun (id) ON DELETE CASCADE,
    dependsOn INTEGER NOT NULL REFERENCES JobRun (id) ON DELETE CASCADE,
    PRIMARY KEY (runId, dependsOn)
) WITHOUT ROWID;
CREATE INDEX JobRunDependency_on ON JobRunDependency (dependsOn, runId);
