-- jobmgr schema, version 5: less index and trigger work per run, so that
-- claiming and finishing a run cost the worker less.

-- RUNNING runs are few (one worker, its concurrency plus what it claimed
-- ahead); JobRun_status_id finds them as fast, and one index fewer changes
-- on every claim and every finish.
DROP INDEX JobRun_running;

-- JobRunCount now keeps the finished statuses and 'ALL' (every run). The
-- claim (QUEUED -> RUNNING) and a re-queue fire no counting at all; QUEUED
-- is ALL minus the rest, RUNNING a count of its few rows.
DROP TRIGGER JobRun_count_insert;
DROP TRIGGER JobRun_count_delete;
DROP TRIGGER JobRun_count_update;

DELETE FROM JobRunCount WHERE status IN ('QUEUED', 'RUNNING');
INSERT INTO JobRunCount (status, n) SELECT 'ALL', count(*) FROM JobRun;

-- One statement per counter: "status IN ('ALL', NEW.status)" would build
-- a temporary index for the list on every row.
CREATE TRIGGER JobRun_count_insert AFTER INSERT ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n + 1 WHERE status = 'ALL';
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER JobRun_count_delete AFTER DELETE ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = 'ALL';
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TRIGGER JobRun_count_update AFTER UPDATE OF status ON JobRun
-- Lists of at most two: a longer IN list in a trigger is built as a
-- temporary table every time the trigger fires.
WHEN OLD.status <> NEW.status
    AND NOT (OLD.status IN ('QUEUED', 'RUNNING') AND NEW.status IN ('QUEUED', 'RUNNING'))
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;
