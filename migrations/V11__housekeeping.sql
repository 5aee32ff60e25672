-- jobmgr schema, version 11: what the worker's housekeeping last did, so
-- that `jobmgr status` and the server (which may run without the worker
-- in its process) can show it. One row per task ('retention', 'disk'),
-- its report as JSON, replaced at each run that has something to say.
CREATE TABLE Housekeeping (
    name      TEXT PRIMARY KEY,
    workerId  INTEGER,
    updatedAt TEXT NOT NULL,
    report    TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;

-- Deleting a run sets MediaFile.jobRunId to NULL (ON DELETE SET NULL):
-- without an index each deleted run would scan every media row.
CREATE INDEX MediaFile_run ON MediaFile (jobRunId) WHERE jobRunId IS NOT NULL;
