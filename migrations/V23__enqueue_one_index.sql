-- jobmgr schema, version 23: an enqueue changes one index instead of two.
-- A queued run was in two indexes, JobRun_queue_type and JobRun_name_id,
-- and SQLite keeps an index that only grows at its end less tidily than a
-- table: every time the last leaf fills it spreads that leaf's entries over
-- its neighbours again, so each index cost an enqueue about 1.2 WAL pages
-- and a round of eight enqueues about 1.8, a third of what the round wrote.
-- JobRun_name_id now holds neither QUEUED runs (JobRun_queue_type holds
-- every one of them, V12) nor RUNNING ones (JobRun_status_id does, V20,
-- and there are only as many as the worker runs at once): a run enters it
-- once, at its finish (or when it is scheduled, waits or is cancelled
-- while queued). Holding RUNNING runs too would make every finish delete
-- and re-insert the same entry, since a status change moves a run between
-- partial indexes whose condition names the status. The readers of a
-- type's runs in id order walk the three (src/store/arms.rs). The
-- condition is a chain of equalities, so that a query naming it, or one of
-- its statuses, may use the index.
DROP INDEX JobRun_name_id;
CREATE INDEX JobRun_name_id ON JobRun (jobName, id)
    WHERE status = 'COMPLETED' OR status = 'FAILED' OR status = 'CANCELLED'
       OR status = 'SCHEDULED' OR status = 'WAITING';
