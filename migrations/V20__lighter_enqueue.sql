-- jobmgr schema, version 20: an enqueue writes two B-tree pages fewer.
-- One acknowledged enqueue used to change five: the row, JobRun_queue_type,
-- JobRun_name_id, JobRun_status_id and the JobRunCount page ('ALL'). Now
-- it changes three: the row, JobRun_queue_type and JobRun_name_id.

-- JobRun_status_id no longer holds QUEUED runs: JobRun_queue_type (V12)
-- already holds every one of them, and the readers that want queued runs
-- in id order walk it per (job type, priority), each range of which is in
-- id order (src/store/arms.rs). The claim (QUEUED -> RUNNING) now inserts
-- one entry instead of deleting one and inserting another. The condition
-- is a chain of equalities, not "status <> 'QUEUED'", because SQLite proves
-- that a query may use a partial index only from a term the condition
-- names: "status = 'RUNNING'" implies this one, it would not imply "<>".
DROP INDEX JobRun_status_id;
CREATE INDEX JobRun_status_id ON JobRun (status, id)
    WHERE status = 'RUNNING' OR status = 'COMPLETED' OR status = 'FAILED'
       OR status = 'CANCELLED' OR status = 'SCHEDULED' OR status = 'WAITING';

-- The total is no longer counted per insert. A new run's id is the largest
-- so far plus one, so the total is the largest id minus the ids below it
-- that have no run ('GAPS'), which changes only when a run other than the
-- newest is deleted, or a run is inserted with an id of its own choosing.
-- The counters move to JobRunCounter; JobRunCount stays, as a view with
-- the same rows as before ('ALL' and the counted statuses), for the readers
-- of the file (sqlite3, `jobmgr check`). ALTER TABLE … RENAME rewrites the
-- triggers that name the table.
ALTER TABLE JobRunCount RENAME TO JobRunCounter;
DROP TRIGGER JobRun_count_insert;
DROP TRIGGER JobRun_count_delete;
DELETE FROM JobRunCounter WHERE status = 'ALL';
INSERT INTO JobRunCounter (status, n) SELECT 'GAPS', coalesce(max(id), 0) - count(*) FROM JobRun;

CREATE VIEW JobRunCount (status, n) AS
SELECT status, n FROM JobRunCounter WHERE status <> 'GAPS'
UNION ALL
SELECT 'ALL', coalesce((SELECT max(id) FROM JobRun), 0)
              - coalesce((SELECT n FROM JobRunCounter WHERE status = 'GAPS'), 0);

-- With M0 the largest id before the insert and M1 after it, the total grows
-- by one and the largest id by M1 - M0: GAPS moves by M1 - M0 - 1, which is
-- 0 for an id that SQLite chose (M0 + 1), so such an insert writes nothing.
CREATE TRIGGER JobRun_count_insert AFTER INSERT ON JobRun
WHEN NEW.id <> (SELECT max(id) FROM JobRun)
  OR NEW.id - 1 <> coalesce((SELECT max(id) FROM JobRun WHERE id < NEW.id), 0)
BEGIN
    UPDATE JobRunCounter SET n = n + CASE
        WHEN NEW.id < (SELECT max(id) FROM JobRun) THEN -1
        ELSE NEW.id - 1 - coalesce((SELECT max(id) FROM JobRun WHERE id < NEW.id), 0) END
    WHERE status = 'GAPS';
END;

-- The total shrinks by one and the largest id by OLD.id - M1 when the
-- newest run goes (M1: the largest id after the delete, 0 in an empty
-- table), by nothing otherwise. SQLite fires this after each row of a
-- multi-row DELETE, with the table as it is after that row.
CREATE TRIGGER JobRun_count_delete AFTER DELETE ON JobRun
WHEN min(coalesce((SELECT max(id) FROM JobRun), 0) - OLD.id, 0) <> -1
BEGIN
    UPDATE JobRunCounter SET n = n + min(coalesce((SELECT max(id) FROM JobRun), 0) - OLD.id, 0) + 1
    WHERE status = 'GAPS';
END;
