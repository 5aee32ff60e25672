-- jobmgr schema, version 10: schedules and the ledger of their due times.
-- Table and column names are a public interface (query them with sqlite3).
-- Times are UTC text like the rest (2026-11-28T12:00:00.000Z).

-- Schedules made through the API or the admin page. Those declared in
-- jobmgr.toml ([schedules.NAME]) live in the file and are not copied here.
CREATE TABLE Schedule (
    name       TEXT    PRIMARY KEY,
    job        TEXT    NOT NULL,
    -- 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly.
    cron       TEXT    NOT NULL,
    -- An IANA zone name; due times are computed there.
    timezone   TEXT    NOT NULL DEFAULT 'UTC',
    parameters TEXT    NOT NULL DEFAULT '{}',
    missed     TEXT    NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'latest', 'all')),
    maxCatchUp INTEGER NOT NULL DEFAULT 10,
    overlap    TEXT    NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue', 'allow')),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    createdAt  TEXT    NOT NULL,
    updatedAt  TEXT    NOT NULL
);

-- What the scheduler keeps per schedule, for both kinds (a file schedule
-- is paused here, since the file is only edited by hand). The scheduler
-- writes it in the transaction of the ledger rows it writes.
CREATE TABLE ScheduleState (
    scheduleName TEXT    PRIMARY KEY,
    paused       INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    -- Due times before this are never decided: a new schedule (or one
    -- enabled again) does not backfill.
    since        TEXT    NOT NULL,
    -- The latest due time decided (or waiting): the next pass starts after it.
    lastDueAt    TEXT,
    -- overlap = 'queue': the one due time waiting for the previous run.
    waitingDueAt TEXT,
    -- The schedule's latest run (a due time's or a "run now"), for overlap.
    -- No foreign key: retention may delete the run.
    lastRunId    INTEGER,
    -- Whether the schedule was enabled when the scheduler last looked: when
    -- it turns on again, due times count from then (no backfill).
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    updatedAt    TEXT    NOT NULL
);

-- The ledger: one row per decided due time, written in the same
-- transaction as the run it made, and unique per schedule and due time,
-- so a crash at any moment neither loses a due time nor runs it twice.
CREATE TABLE ScheduleTick (
    id           INTEGER PRIMARY KEY,
    scheduleName TEXT    NOT NULL,
    dueAt        TEXT    NOT NULL,
    decidedAt    TEXT    NOT NULL,
    outcome      TEXT    NOT NULL CHECK (outcome IN
                     ('ENQUEUED', 'SKIPPED_MISSED', 'SKIPPED_OVERLAP', 'SKIPPED_PAUSED')),
    -- The run an ENQUEUED due time made (no foreign key: retention may
    -- delete the run, the ledger row stays).
    runId        INTEGER,
    -- Why, in words: "on time", "missed by 2 h (missed = "skip")", ...
    reason       TEXT,
    UNIQUE (scheduleName, dueAt)
);

-- Runs a schedule made name it and their due time ("run now" runs name the
-- schedule and have no due time).
ALTER TABLE JobRun ADD COLUMN scheduleName TEXT;
ALTER TABLE JobRun ADD COLUMN scheduledFor TEXT;

-- The scheduler looks at the newest change of each to learn whether to
-- read the schedules again.
CREATE INDEX Schedule_updated ON Schedule (updatedAt);
CREATE INDEX ScheduleState_updated ON ScheduleState (updatedAt);
