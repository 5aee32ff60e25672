-- Runs per status, kept by triggers so the statistics overview costs the
-- same with a million runs as with ten (a count over the status index
-- grows with the history).
CREATE TABLE JobRunCount (
    status TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO JobRunCount (status, n)
SELECT s.status, (SELECT count(*) FROM JobRun r WHERE r.status = s.status)
FROM (SELECT 'QUEUED' AS status UNION ALL SELECT 'RUNNING' UNION ALL SELECT 'COMPLETED'
      UNION ALL SELECT 'FAILED' UNION ALL SELECT 'CANCELLED') s;

CREATE TRIGGER JobRun_count_insert AFTER INSERT ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER JobRun_count_delete AFTER DELETE ON JobRun
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
END;

CREATE TRIGGER JobRun_count_update AFTER UPDATE OF status ON JobRun
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE JobRunCount SET n = n - 1 WHERE status = OLD.status;
    UPDATE JobRunCount SET n = n + 1 WHERE status = NEW.status;
END;
