-- jobmgr schema, version 14: the counters `GET /metrics` reads, kept as
-- runs finish, log lines are written and schedules decide due times, so a
-- scrape costs the same with ten million runs as with ten. They are
-- totals: retention deleting old rows does not lower them.

-- Finished runs per job type and status, with their durations
-- (finishedAt - startedAt) as a histogram. The le* columns are cumulative
-- counts of the runs that took at most that long; `timed` counts the runs
-- that have a duration (a run cancelled before it started has none).
CREATE TABLE JobStat (
    jobName       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    n             INTEGER NOT NULL DEFAULT 0,
    timed         INTEGER NOT NULL DEFAULT 0,
    durationSumMs INTEGER NOT NULL DEFAULT 0,
    le100ms       INTEGER NOT NULL DEFAULT 0,
    le500ms       INTEGER NOT NULL DEFAULT 0,
    le1s          INTEGER NOT NULL DEFAULT 0,
    le5s          INTEGER NOT NULL DEFAULT 0,
    le10s         INTEGER NOT NULL DEFAULT 0,
    le30s         INTEGER NOT NULL DEFAULT 0,
    le1m          INTEGER NOT NULL DEFAULT 0,
    le5m          INTEGER NOT NULL DEFAULT 0,
    le15m         INTEGER NOT NULL DEFAULT 0,
    le1h          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (jobName, status)
) WITHOUT ROWID;

-- Totals without labels: 'log_lines' (JobLog rows ever written).
CREATE TABLE MetricCounter (
    name TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

-- Ledger rows per schedule and outcome (the ledger is never pruned, but a
-- GROUP BY over it would still grow with every due time).
CREATE TABLE ScheduleTickStat (
    scheduleName TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (scheduleName, outcome)
) WITHOUT ROWID;

-- The back-fill, once, from the rows there are.
INSERT INTO JobStat (jobName, status, n, timed, durationSumMs, le100ms, le500ms, le1s, le5s,
                     le10s, le30s, le1m, le5m, le15m, le1h)
SELECT jobName, status, count(*), count(d), coalesce(sum(d), 0),
       count(CASE WHEN d <= 100 THEN 1 END), count(CASE WHEN d <= 500 THEN 1 END),
       count(CASE WHEN d <= 1000 THEN 1 END), count(CASE WHEN d <= 5000 THEN 1 END),
       count(CASE WHEN d <= 10000 THEN 1 END), count(CASE WHEN d <= 30000 THEN 1 END),
       count(CASE WHEN d <= 60000 THEN 1 END), count(CASE WHEN d <= 300000 THEN 1 END),
       count(CASE WHEN d <= 900000 THEN 1 END), count(CASE WHEN d <= 3600000 THEN 1 END)
FROM (SELECT jobName, status,
             max(0, CAST(round((unixepoch(finishedAt, 'subsec')
                                - unixepoch(startedAt, 'subsec')) * 1000) AS INTEGER)) AS d
      FROM JobRun WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED'))
WHERE true
GROUP BY jobName, status;

INSERT INTO MetricCounter (name, n) SELECT 'log_lines', count(*) FROM JobLog;

INSERT INTO ScheduleTickStat (scheduleName, outcome, n)
SELECT scheduleName, outcome, count(*) FROM ScheduleTick WHERE true GROUP BY scheduleName, outcome;

-- Connections with triggers on (the server's, the CLI's, a user's sqlite3)
-- count here; the bulk writers turn triggers off and count with one
-- statement per commit instead (src/store/stats.rs). A run finishes once:
-- no move leaves a finished status.
CREATE TRIGGER JobRun_stat_finish AFTER UPDATE OF status ON JobRun
WHEN OLD.status <> NEW.status AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
BEGIN
    INSERT INTO JobStat (jobName, status, n, timed, durationSumMs, le100ms, le500ms, le1s, le5s,
                         le10s, le30s, le1m, le5m, le15m, le1h)
    SELECT NEW.jobName, NEW.status, 1, d IS NOT NULL, coalesce(d, 0),
           coalesce(d <= 100, 0), coalesce(d <= 500, 0), coalesce(d <= 1000, 0),
           coalesce(d <= 5000, 0), coalesce(d <= 10000, 0), coalesce(d <= 30000, 0),
           coalesce(d <= 60000, 0), coalesce(d <= 300000, 0), coalesce(d <= 900000, 0),
           coalesce(d <= 3600000, 0)
    FROM (SELECT max(0, CAST(round((unixepoch(NEW.finishedAt, 'subsec')
                                    - unixepoch(NEW.startedAt, 'subsec')) * 1000) AS INTEGER)) AS d)
    WHERE true
    ON CONFLICT (jobName, status) DO UPDATE SET
        n = n + excluded.n, timed = timed + excluded.timed,
        durationSumMs = durationSumMs + excluded.durationSumMs,
        le100ms = le100ms + excluded.le100ms, le500ms = le500ms + excluded.le500ms,
        le1s = le1s + excluded.le1s, le5s = le5s + excluded.le5s,
        le10s = le10s + excluded.le10s, le30s = le30s + excluded.le30s,
        le1m = le1m + excluded.le1m, le5m = le5m + excluded.le5m,
        le15m = le15m + excluded.le15m, le1h = le1h + excluded.le1h;
END;

CREATE TRIGGER JobRun_stat_insert_finished AFTER INSERT ON JobRun
WHEN NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
BEGIN
    INSERT INTO JobStat (jobName, status, n, timed, durationSumMs, le100ms, le500ms, le1s, le5s,
                         le10s, le30s, le1m, le5m, le15m, le1h)
    SELECT NEW.jobName, NEW.status, 1, d IS NOT NULL, coalesce(d, 0),
           coalesce(d <= 100, 0), coalesce(d <= 500, 0), coalesce(d <= 1000, 0),
           coalesce(d <= 5000, 0), coalesce(d <= 10000, 0), coalesce(d <= 30000, 0),
           coalesce(d <= 60000, 0), coalesce(d <= 300000, 0), coalesce(d <= 900000, 0),
           coalesce(d <= 3600000, 0)
    FROM (SELECT max(0, CAST(round((unixepoch(NEW.finishedAt, 'subsec')
                                    - unixepoch(NEW.startedAt, 'subsec')) * 1000) AS INTEGER)) AS d)
    WHERE true
    ON CONFLICT (jobName, status) DO UPDATE SET
        n = n + excluded.n, timed = timed + excluded.timed,
        durationSumMs = durationSumMs + excluded.durationSumMs,
        le100ms = le100ms + excluded.le100ms, le500ms = le500ms + excluded.le500ms,
        le1s = le1s + excluded.le1s, le5s = le5s + excluded.le5s,
        le10s = le10s + excluded.le10s, le30s = le30s + excluded.le30s,
        le1m = le1m + excluded.le1m, le5m = le5m + excluded.le5m,
        le15m = le15m + excluded.le15m, le1h = le1h + excluded.le1h;
END;

CREATE TRIGGER JobLog_stat_insert AFTER INSERT ON JobLog
BEGIN
    UPDATE MetricCounter SET n = n + 1 WHERE name = 'log_lines';
END;

CREATE TRIGGER ScheduleTick_stat_insert AFTER INSERT ON ScheduleTick
BEGIN
    INSERT INTO ScheduleTickStat (scheduleName, outcome, n) VALUES (NEW.scheduleName, NEW.outcome, 1)
    ON CONFLICT (scheduleName, outcome) DO UPDATE SET n = n + 1;
END;

-- Attempts put aside to be tried again (a retry policy's backoff, or a
-- lost worker's run retried), per job type: each is one JobRunAttempt row.
CREATE TABLE RetryStat (
    jobName TEXT    PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO RetryStat (jobName, n)
SELECT r.jobName, count(*) FROM JobRunAttempt a JOIN JobRun r ON r.id = a.jobRunId
WHERE true GROUP BY r.jobName;

CREATE TRIGGER JobRunAttempt_stat_insert AFTER INSERT ON JobRunAttempt
BEGIN
    INSERT INTO RetryStat (jobName, n) SELECT jobName, 1 FROM JobRun WHERE id = NEW.jobRunId
    ON CONFLICT (jobName) DO UPDATE SET n = n + 1;
END;
