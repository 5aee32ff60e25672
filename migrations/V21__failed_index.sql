-- jobmgr schema, version 21: the admin page's failure figures on a busy
-- history. GET /api/errors groups the FAILED runs of a window; through
-- JobRun_finished it visited every finished run of the window (a day of a
-- busy host: ~143,000 entries and their rows) to keep the tenth that
-- failed. This index holds the FAILED runs only, so it costs a write only
-- when a run fails, never on the hot COMPLETED path.
CREATE INDEX JobRun_failed ON JobRun (finishedAt) WHERE status = 'FAILED';

-- GET /api/stats now counts its windows from RunMinute (V19) instead of
-- the history. A deleted run (the admin's bulk delete, retention by count
-- or size) used to drop out of those counts at once, and still does: a
-- delete takes the run back out of its minute. Only the counts move; the
-- duration histogram keeps the run (its duration was taken from the start
-- of the attempt, which the row may no longer hold). Connections with
-- triggers off (the enqueue committer, the worker's writer) delete no runs.
CREATE TRIGGER JobRun_minute_delete AFTER DELETE ON JobRun
WHEN OLD.status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND unixepoch(OLD.finishedAt) IS NOT NULL
BEGIN
    UPDATE RunMinute SET completed = completed - (OLD.status = 'COMPLETED'),
                         failed = failed - (OLD.status = 'FAILED'),
                         cancelled = cancelled - (OLD.status = 'CANCELLED')
    WHERE jobName = OLD.jobName AND minute = unixepoch(OLD.finishedAt) / 60;
END;
