-- jobmgr schema, version 22: GET /api/errors without reading the runs.
-- The failure groups of a window read, for every FAILED run in it, its
-- type and its message: through V21's index on finishedAt alone that was
-- one row lookup per failure (a day of a busy host: ~14,000 of them, most
-- of the page's 56 ms). With the type and the message in the index the
-- window is one range of it. It still holds only the FAILED runs, so a
-- completed run never writes it. The message stays whole (a key longer
-- than a quarter page spills to overflow pages like any other), because
-- the groups mask the whole message.
DROP INDEX JobRun_failed;
CREATE INDEX JobRun_failed ON JobRun (finishedAt, jobName, error) WHERE status = 'FAILED';
