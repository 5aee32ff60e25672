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

-- Each trigger runs one statement, and fires only when its counter
-- changes: a trigger with two statements cost bulk enqueues 40 % of their
-- speed, and "status IN ('ALL', NEW.status)" would even build a temporary
-- index per row. Conditions compare with = and <>, never a long IN list,
-- which SQLite builds as a temporary table each time a trigger fires.
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
