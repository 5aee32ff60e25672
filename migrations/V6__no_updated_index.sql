-- jobmgr schema, version 6: no index on JobRun.updatedAt.
--
-- The change watcher used it to find "runs changed since", but every claim,
-- finish and progress write moved the run in it (two index changes each),
-- about a sixth of the worker's writing. The watcher now finds changes
-- through what it needs anyway: new ids, the few RUNNING rows of
-- JobRun_status_id, and JobRun_finished. updatedAt is still kept on every
-- change.
DROP INDEX JobRun_updated;
