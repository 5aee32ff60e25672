-- jobmgr schema, version 13: notifications.
--
-- The outbox: one row per event and notifier, queued in the same
-- transaction that records the event (or, for events the worker's scan
-- finds, with the scan's cursor), delivered later by the worker's
-- delivery thread, so a slow or dead receiver never holds up a run and a
-- crash loses nothing. The UNIQUE key queues an event once per notifier
-- however often it is seen; its order (event, subject first) also serves
-- the scan's "already queued?" look-up.
CREATE TABLE NotifyOutbox (
    id            INTEGER PRIMARY KEY,
    event         TEXT    NOT NULL CHECK (event IN ('run_failed', 'run_overdue', 'run_stalled',
                                                    'worker_dead', 'disk_low', 'schedule_missed')),
    -- What the event is about: 'run:12', 'worker:3', 'tick:40', 'disk:<time>'.
    subject       TEXT    NOT NULL,
    -- The [[notify]] entry's name.
    notifier      TEXT    NOT NULL,
    -- No foreign key: retention may delete the run, the delivery stays.
    runId         INTEGER,
    jobName       TEXT,
    payload       TEXT    NOT NULL DEFAULT '{}',
    status        TEXT    NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    nextAttemptAt TEXT    NOT NULL,
    lastError     TEXT,
    createdAt     TEXT    NOT NULL,
    deliveredAt   TEXT,
    UNIQUE (event, subject, notifier)
);
-- What the delivery thread asks for: the pending rows that are due.
CREATE INDEX NotifyOutbox_due ON NotifyOutbox (nextAttemptAt, id) WHERE status = 'PENDING';

-- Where the worker's scan for events has got to ('run_failed': the
-- finishedAt of the newest failed run seen; 'schedule_missed': the
-- highest ScheduleTick id seen).
CREATE TABLE NotifyCursor (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
