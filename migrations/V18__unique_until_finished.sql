-- jobmgr schema, version 18: a unique key is held until its run finishes,
-- said with finishedAt instead of the list of unfinished statuses. The
-- claim (QUEUED -> RUNNING) writes neither uniqueKey nor finishedAt, so it
-- no longer deletes and re-inserts a keyed run's entry and evaluates no IN
-- list for it; the finish removes the entry once. Every move to COMPLETED,
-- FAILED or CANCELLED sets finishedAt, and no move back (a retry, a
-- requeue) starts from a finished run, so "finishedAt IS NULL" is exactly
-- "SCHEDULED, WAITING, QUEUED or RUNNING".

-- A finished run without finishedAt (none is written so, but a file edited
-- by hand might hold one) would keep its key: give it its last update.
UPDATE JobRun SET finishedAt = updatedAt
WHERE finishedAt IS NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED');

DROP INDEX JobRun_unique;
CREATE UNIQUE INDEX JobRun_unique ON JobRun (uniqueKey)
    WHERE uniqueKey IS NOT NULL AND finishedAt IS NULL;
