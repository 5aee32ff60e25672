-- jobmgr schema, version 24: how hard the worker's writer thread works.
-- A worker process has one writer, which commits every claim, progress
-- update, log line and finish; when it is busy nearly all the time, it and
-- not the jobs or the disk sets how many runs a second the host finishes.
-- The worker keeps these running totals of its own life and writes them
-- with each heartbeat (the row it updates anyway), so another process,
-- `serve`'s /metrics and /api/worker, can report them. Microseconds.
ALTER TABLE Worker ADD COLUMN writerBusyUs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE Worker ADD COLUMN writerCommits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE Worker ADD COLUMN writerCommitUs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE Worker ADD COLUMN writerLockWaitUs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE Worker ADD COLUMN writerSyncUs INTEGER NOT NULL DEFAULT 0;
