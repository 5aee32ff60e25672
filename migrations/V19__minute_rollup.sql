-- jobmgr schema, version 19: finished runs per job type and minute, the
-- rollup the admin page's charts and per-type table read (GET /api/insight),
-- so they cost the same with ten million runs as with ten: a window reads
-- types x minutes rows, never the history. Kept like JobStat (V14): by the
-- triggers below on connections with triggers on, and by one statement per
-- (job, minute) per commit on the bulk writers' (src/store/minutes.rs).
-- Retention drops rows older than 8 days (the week the charts show, + 1).

-- `minute` is the finish time in whole minutes since 1970 (UTC). The b*
-- columns are a duration histogram, each counting the runs that took more
-- than the previous bound and at most its own (not cumulative, so most are
-- 0, which SQLite stores in no bytes); p50 and p95 are interpolated from
-- it. `timed` counts the runs that have a duration (a run cancelled before
-- it started has none).
CREATE TABLE RunMinute (
    jobName       TEXT    NOT NULL,
    minute        INTEGER NOT NULL,
    completed     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cancelled     INTEGER NOT NULL DEFAULT 0,
    timed         INTEGER NOT NULL DEFAULT 0,
    durationSumMs INTEGER NOT NULL DEFAULT 0,
    b10ms         INTEGER NOT NULL DEFAULT 0,
    b25ms         INTEGER NOT NULL DEFAULT 0,
    b50ms         INTEGER NOT NULL DEFAULT 0,
    b100ms        INTEGER NOT NULL DEFAULT 0,
    b250ms        INTEGER NOT NULL DEFAULT 0,
    b500ms        INTEGER NOT NULL DEFAULT 0,
    b1s           INTEGER NOT NULL DEFAULT 0,
    b2500ms       INTEGER NOT NULL DEFAULT 0,
    b5s           INTEGER NOT NULL DEFAULT 0,
    b10s          INTEGER NOT NULL DEFAULT 0,
    b30s          INTEGER NOT NULL DEFAULT 0,
    b1m           INTEGER NOT NULL DEFAULT 0,
    b5m           INTEGER NOT NULL DEFAULT 0,
    b15m          INTEGER NOT NULL DEFAULT 0,
    b1h           INTEGER NOT NULL DEFAULT 0,
    bOver1h       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (jobName, minute)
) WITHOUT ROWID;

-- The back-fill, once, from the finished runs of the last 8 days (older
-- rows would only be dropped by the next retention pass).
INSERT INTO RunMinute (jobName, minute, completed, failed, cancelled, timed, durationSumMs,
                       b10ms, b25ms, b50ms, b100ms, b250ms, b500ms, b1s, b2500ms, b5s, b10s,
                       b30s, b1m, b5m, b15m, b1h, bOver1h)
SELECT jobName, minute, count(CASE WHEN status = 'COMPLETED' THEN 1 END),
       count(CASE WHEN status = 'FAILED' THEN 1 END),
       count(CASE WHEN status = 'CANCELLED' THEN 1 END), count(d), coalesce(sum(d), 0),
       count(CASE WHEN k = 0 THEN 1 END), count(CASE WHEN k = 1 THEN 1 END),
       count(CASE WHEN k = 2 THEN 1 END), count(CASE WHEN k = 3 THEN 1 END),
       count(CASE WHEN k = 4 THEN 1 END), count(CASE WHEN k = 5 THEN 1 END),
       count(CASE WHEN k = 6 THEN 1 END), count(CASE WHEN k = 7 THEN 1 END),
       count(CASE WHEN k = 8 THEN 1 END), count(CASE WHEN k = 9 THEN 1 END),
       count(CASE WHEN k = 10 THEN 1 END), count(CASE WHEN k = 11 THEN 1 END),
       count(CASE WHEN k = 12 THEN 1 END), count(CASE WHEN k = 13 THEN 1 END),
       count(CASE WHEN k = 14 THEN 1 END), count(CASE WHEN k = 15 THEN 1 END)
FROM (SELECT jobName, status, minute, d,
             CASE WHEN d <= 10 THEN 0 WHEN d <= 25 THEN 1 WHEN d <= 50 THEN 2
             WHEN d <= 100 THEN 3 WHEN d <= 250 THEN 4 WHEN d <= 500 THEN 5
             WHEN d <= 1000 THEN 6 WHEN d <= 2500 THEN 7 WHEN d <= 5000 THEN 8
             WHEN d <= 10000 THEN 9 WHEN d <= 30000 THEN 10 WHEN d <= 60000 THEN 11
             WHEN d <= 300000 THEN 12 WHEN d <= 900000 THEN 13 WHEN d <= 3600000 THEN 14
             ELSE 15 END AS k
      FROM (SELECT jobName, status, unixepoch(finishedAt) / 60 AS minute,
                   max(0, CAST(round((unixepoch(finishedAt, 'subsec')
                                      - unixepoch(startedAt, 'subsec')) * 1000) AS INTEGER)) AS d
            FROM JobRun INDEXED BY JobRun_finished
            WHERE finishedAt IS NOT NULL
              AND finishedAt >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-8 days')
              AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')))
WHERE minute IS NOT NULL
GROUP BY jobName, minute;

-- A run finishes once: no move leaves a finished status.
CREATE TRIGGER JobRun_minute_finish AFTER UPDATE OF status ON JobRun
WHEN OLD.status <> NEW.status AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
BEGIN
    INSERT INTO RunMinute (jobName, minute, completed, failed, cancelled, timed, durationSumMs,
                           b10ms, b25ms, b50ms, b100ms, b250ms, b500ms, b1s, b2500ms, b5s, b10s,
                           b30s, b1m, b5m, b15m, b1h, bOver1h)
    SELECT NEW.jobName, unixepoch(NEW.finishedAt) / 60, NEW.status = 'COMPLETED',
           NEW.status = 'FAILED', NEW.status = 'CANCELLED', d IS NOT NULL, coalesce(d, 0),
           coalesce(k = 0, 0), coalesce(k = 1, 0), coalesce(k = 2, 0), coalesce(k = 3, 0),
           coalesce(k = 4, 0), coalesce(k = 5, 0), coalesce(k = 6, 0), coalesce(k = 7, 0),
           coalesce(k = 8, 0), coalesce(k = 9, 0), coalesce(k = 10, 0), coalesce(k = 11, 0),
           coalesce(k = 12, 0), coalesce(k = 13, 0), coalesce(k = 14, 0), coalesce(k = 15, 0)
    FROM (SELECT d,
                 CASE WHEN d <= 10 THEN 0 WHEN d <= 25 THEN 1 WHEN d <= 50 THEN 2
                 WHEN d <= 100 THEN 3 WHEN d <= 250 THEN 4 WHEN d <= 500 THEN 5
                 WHEN d <= 1000 THEN 6 WHEN d <= 2500 THEN 7 WHEN d <= 5000 THEN 8
                 WHEN d <= 10000 THEN 9 WHEN d <= 30000 THEN 10 WHEN d <= 60000 THEN 11
                 WHEN d <= 300000 THEN 12 WHEN d <= 900000 THEN 13 WHEN d <= 3600000 THEN 14
                 ELSE 15 END AS k
          FROM (SELECT max(0, CAST(round((unixepoch(NEW.finishedAt, 'subsec')
                         - unixepoch(NEW.startedAt, 'subsec')) * 1000) AS INTEGER)) AS d))
    -- A finish time that is not a time (a row made by hand) is not counted.
    WHERE unixepoch(NEW.finishedAt) IS NOT NULL
    ON CONFLICT (jobName, minute) DO UPDATE SET
        completed = completed + excluded.completed, failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled, timed = timed + excluded.timed,
        durationSumMs = durationSumMs + excluded.durationSumMs,
        b10ms = b10ms + excluded.b10ms, b25ms = b25ms + excluded.b25ms,
        b50ms = b50ms + excluded.b50ms, b100ms = b100ms + excluded.b100ms,
        b250ms = b250ms + excluded.b250ms, b500ms = b500ms + excluded.b500ms,
        b1s = b1s + excluded.b1s, b2500ms = b2500ms + excluded.b2500ms,
        b5s = b5s + excluded.b5s, b10s = b10s + excluded.b10s, b30s = b30s + excluded.b30s,
        b1m = b1m + excluded.b1m, b5m = b5m + excluded.b5m, b15m = b15m + excluded.b15m,
        b1h = b1h + excluded.b1h, bOver1h = bOver1h + excluded.bOver1h;
END;

CREATE TRIGGER JobRun_minute_insert_finished AFTER INSERT ON JobRun
WHEN NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
BEGIN
    INSERT INTO RunMinute (jobName, minute, completed, failed, cancelled, timed, durationSumMs,
                           b10ms, b25ms, b50ms, b100ms, b250ms, b500ms, b1s, b2500ms, b5s, b10s,
                           b30s, b1m, b5m, b15m, b1h, bOver1h)
    SELECT NEW.jobName, unixepoch(NEW.finishedAt) / 60, NEW.status = 'COMPLETED',
           NEW.status = 'FAILED', NEW.status = 'CANCELLED', d IS NOT NULL, coalesce(d, 0),
           coalesce(k = 0, 0), coalesce(k = 1, 0), coalesce(k = 2, 0), coalesce(k = 3, 0),
           coalesce(k = 4, 0), coalesce(k = 5, 0), coalesce(k = 6, 0), coalesce(k = 7, 0),
           coalesce(k = 8, 0), coalesce(k = 9, 0), coalesce(k = 10, 0), coalesce(k = 11, 0),
           coalesce(k = 12, 0), coalesce(k = 13, 0), coalesce(k = 14, 0), coalesce(k = 15, 0)
    FROM (SELECT d,
                 CASE WHEN d <= 10 THEN 0 WHEN d <= 25 THEN 1 WHEN d <= 50 THEN 2
                 WHEN d <= 100 THEN 3 WHEN d <= 250 THEN 4 WHEN d <= 500 THEN 5
                 WHEN d <= 1000 THEN 6 WHEN d <= 2500 THEN 7 WHEN d <= 5000 THEN 8
                 WHEN d <= 10000 THEN 9 WHEN d <= 30000 THEN 10 WHEN d <= 60000 THEN 11
                 WHEN d <= 300000 THEN 12 WHEN d <= 900000 THEN 13 WHEN d <= 3600000 THEN 14
                 ELSE 15 END AS k
          FROM (SELECT max(0, CAST(round((unixepoch(NEW.finishedAt, 'subsec')
                         - unixepoch(NEW.startedAt, 'subsec')) * 1000) AS INTEGER)) AS d))
    -- A finish time that is not a time (a row made by hand) is not counted.
    WHERE unixepoch(NEW.finishedAt) IS NOT NULL
    ON CONFLICT (jobName, minute) DO UPDATE SET
        completed = completed + excluded.completed, failed = failed + excluded.failed,
        cancelled = cancelled + excluded.cancelled, timed = timed + excluded.timed,
        durationSumMs = durationSumMs + excluded.durationSumMs,
        b10ms = b10ms + excluded.b10ms, b25ms = b25ms + excluded.b25ms,
        b50ms = b50ms + excluded.b50ms, b100ms = b100ms + excluded.b100ms,
        b250ms = b250ms + excluded.b250ms, b500ms = b500ms + excluded.b500ms,
        b1s = b1s + excluded.b1s, b2500ms = b2500ms + excluded.b2500ms,
        b5s = b5s + excluded.b5s, b10s = b10s + excluded.b10s, b30s = b30s + excluded.b30s,
        b1m = b1m + excluded.b1m, b5m = b5m + excluded.b5m, b15m = b15m + excluded.b15m,
        b1h = b1h + excluded.b1h, bOver1h = bOver1h + excluded.bOver1h;
END;
