-- jobmgr schema, version 15: bulk actions as durable records.
--
-- A bulk cancel, re-run or delete over a history filter runs in the
-- background, batch by batch. Its row is written in the same transaction
-- as each batch, with the cursor the next batch starts from (the status
-- being walked and the last run id done), so a process killed mid-way
-- leaves a row that says exactly what was done and where to go on: the
-- batch after the cursor was either committed with it or not at all.
CREATE TABLE BulkAction (
    id         INTEGER PRIMARY KEY,
    -- cancel | rerun | delete
    action     TEXT    NOT NULL,
    -- The request's filter as JSON: status, name, q, since, until, all.
    filter     TEXT    NOT NULL,
    -- Runs the filter matched when the action began.
    total      INTEGER NOT NULL,
    -- Runs walked so far (acted on, or found no longer to apply).
    done       INTEGER NOT NULL DEFAULT 0,
    -- RUNNING | DONE | FAILED | INTERRUPTED
    status     TEXT    NOT NULL,
    error      TEXT,
    -- Who asked: the web client's address or `cli`, and the OS user.
    source     TEXT    NOT NULL,
    user       TEXT,
    createdAt  TEXT    NOT NULL,
    finishedAt TEXT,
    -- The trigger new runs get (a re-run).
    triggeredBy TEXT   NOT NULL,
    -- Who carries it out: `serve` (resumed after a crash) or `cli` (marked
    -- INTERRUPTED when its process is gone), and that process.
    runner     TEXT    NOT NULL,
    ownerPid   INTEGER NOT NULL,
    -- The snapshot: only runs with an id at most this are walked.
    upto       INTEGER NOT NULL,
    -- The cursor: the index of the status walked, and the last id done.
    phase      INTEGER NOT NULL DEFAULT 0,
    afterId    INTEGER NOT NULL DEFAULT 0,
    -- The action's audit row (made by its first batch) and its counts.
    auditId    INTEGER,
    report     TEXT    NOT NULL DEFAULT '{}'
);

-- The unfinished actions, for recovery at start.
CREATE INDEX BulkAction_running ON BulkAction (id) WHERE status = 'RUNNING';
