-- jobmgr schema, version 1. Table and column names are a public interface:
-- users query this file with sqlite3. Timestamps are UTC text such as
-- 2026-11-28T12:00:00.123Z, which sorts in time order.

CREATE TABLE Worker (
    id              INTEGER PRIMARY KEY,
    hostname        TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    version         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('STARTING', 'RUNNING', 'STOPPING', 'STOPPED', 'DEAD')),
    concurrency     INTEGER NOT NULL DEFAULT 1,
    startedAt       TEXT    NOT NULL,
    heartbeatAt     TEXT    NOT NULL,
    stopRequestedAt TEXT,
    stoppingAt      TEXT,
    stoppedAt       TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}'
);

-- At most one worker may be active per database: a second active row fails
-- with SQLITE_CONSTRAINT_UNIQUE inside the registration transaction.
CREATE UNIQUE INDEX Worker_one_active ON Worker ((1))
    WHERE state IN ('STARTING', 'RUNNING', 'STOPPING');

CREATE TABLE JobRun (
    id                INTEGER PRIMARY KEY,
    jobName           TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
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
    updatedAt         TEXT    NOT NULL
);

-- The claim: WHERE status = 'QUEUED' ORDER BY priority DESC, id. The claim
-- names this index with INDEXED BY so the planner never sorts the backlog.
CREATE INDEX JobRun_queue ON JobRun (priority DESC, id) WHERE status = 'QUEUED';
-- Runs a worker holds, for fencing, recovery and cancellation checks.
CREATE INDEX JobRun_running ON JobRun (workerId) WHERE status = 'RUNNING';
-- History pages: newest first, optionally by status or job type.
CREATE INDEX JobRun_status_id ON JobRun (status, id);
CREATE INDEX JobRun_name_id ON JobRun (jobName, id);
-- Retention: finished runs by age.
CREATE INDEX JobRun_finished ON JobRun (finishedAt) WHERE finishedAt IS NOT NULL;
CREATE INDEX JobRun_rerun ON JobRun (rerunOfId) WHERE rerunOfId IS NOT NULL;

CREATE TABLE JobLog (
    id        INTEGER PRIMARY KEY,
    jobRunId  INTEGER NOT NULL REFERENCES JobRun (id) ON DELETE CASCADE,
    level     TEXT    NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    stage     TEXT,
    message   TEXT    NOT NULL,
    context   TEXT,
    timestamp TEXT    NOT NULL
);

-- Serves "WHERE jobRunId = ? ORDER BY timestamp" without a sort, at any size.
CREATE INDEX JobLog_run_time ON JobLog (jobRunId, timestamp);
