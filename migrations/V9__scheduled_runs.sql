-- jobmgr schema, version 9: runs that wait for a time (SCHEDULED, with
-- runAt), and room for runs that wait for other runs (WAITING).
--
-- SQLite cannot change a CHECK constraint in place, so JobRun is rebuilt:
-- a new table with the wider status list and the runAt column, the rows
-- copied with their ids, the old table dropped and the new one renamed.
-- jobmgr applies this with foreign keys off (a DROP TABLE with them on
-- would first delete every row, and with it every JobLog line through ON
-- DELETE CASCADE); the references in JobLog and MediaFile name the table
-- JobRun, which after the rename is the new one.

CREATE TABLE JobRun_v9 (
    id                INTEGER PRIMARY KEY,
    jobName           TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('SCHEDULED', 'WAITING', 'QUEUED', 'RUNNING',
                                                         'COMPLETED', 'FAILED', 'CANCELLED')),
    parameters        TEXT    NOT NULL DEFAULT '{}',
    priority          INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 1,
    createdAt         TEXT    NOT NULL,
    startedAt         TEXT,
    finishedAt        TEXT,
    workerId          INTEGER REFERENCES Worker (id),
    currentStage      TEXT,
    entitiesProcessed INTEGER NOT NULL DEFAULT 0,
    entitiesTotal     INTEGER,
    entitiesUnit      TEXT,
    outcomeSummary    TEXT    NOT NULL DEFAULT '{}',
    error             TEXT,
    errorContext      TEXT,
    rerunOfId         INTEGER REFERENCES JobRun (id) ON DELETE SET NULL,
    triggeredBy       TEXT    NOT NULL DEFAULT 'cli',
    metadata          TEXT    NOT NULL DEFAULT '{}',
    cancelRequestedAt TEXT,
    updatedAt         TEXT    NOT NULL,
    -- When a SCHEDULED run becomes due (UTC text like the other times);
    -- kept after it was queued, as a record of what was asked for.
    runAt             TEXT
);

INSERT INTO JobRun_v9 (id, jobName, status, parameters, priority, attempt, createdAt, startedAt,
                       finishedAt, workerId, currentStage, entitiesProcessed, entitiesTotal,
                       entitiesUnit, outcomeSummary, error, errorContext, rerunOfId, triggeredBy,
                       metadata, cancelRequestedAt, updatedAt)
SELECT id, jobName, status, parameters, priority, attempt, createdAt, startedAt,
       finishedAt, workerId, currentStage, entitiesProcessed, entitiesTotal,
       entitiesUnit, outcomeSummary, error, errorContext, rerunOfId, triggeredBy,
       metadata, cancelRequestedAt, updatedAt
FROM JobRun;

DROP TABLE JobRun;
ALTER TABLE JobRun_v9 RENAME TO JobRun;

-- The indexes as before (see V1, V5, V6), plus the due times of SCHEDULED
-- runs: the worker asks for the earliest (one index probe) and queues
-- those due with one range scan, so any number of runs waiting for later
-- costs the claim nothing.
CREATE INDEX JobRun_queue ON JobRun (priority DESC, id) WHERE status = 'QUEUED';
CREATE INDEX JobRun_due ON JobRun (runAt) WHERE status = 'SCHEDULED';
CREATE INDEX JobRun_status_id ON JobRun (status, id);
CREATE INDEX JobRun_name_id ON JobRun (jobName, id);
CREATE INDEX JobRun_finished ON JobRun (finishedAt) WHERE finishedAt IS NOT NULL;
CREATE INDEX JobRun_rerun ON JobRun (rerunOfId) WHERE rerunOfId IS NOT NULL;

-- The counters of V5, unchanged: every status but QUEUED and RUNNING has
-- one, so SCHEDULED and WAITING are counted like the finished ones (their
-- moves are rare) and QUEUED stays ALL minus the rest.
INSERT INTO JobRunCount (status, n) VALUES ('SCHEDULED', 0), ('WAITING', 0);

CREATE TRIGGER JobRun_count_insert AFTER INSERT ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n + 1 WHERE status = 'ALL';
END;

CREATE TRIGGER JobRun_count_insert_finished AFTER INSERT ON JobRun
WHEN NEW.status <> 'QUEUED' AND NEW.status <> 'RUNNING'
BEGIN
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER JobRun_count_delete AFTER DELETE ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = 'ALL';
END;

CREATE TRIGGER JobRun_count_delete_finished AFTER DELETE ON JobRun
WHEN OLD.status <> 'QUEUED' AND OLD.status <> 'RUNNING'
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TRIGGER JobRun_count_finish AFTER UPDATE OF status ON JobRun
WHEN OLD.status <> NEW.status AND NEW.status <> 'QUEUED' AND NEW.status <> 'RUNNING'
BEGIN
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER JobRun_count_unfinish AFTER UPDATE OF status ON JobRun
WHEN OLD.status <> NEW.status AND OLD.status <> 'QUEUED' AND OLD.status <> 'RUNNING'
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
END;
