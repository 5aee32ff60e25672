//! Storage helpers for `jobmgr bench`: the raw-insert ceiling and fast
//! generation of large histories.

use rusqlite::{Connection, params};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Creates the table the raw ceiling writes to: JobLog-like rows with two
/// secondary indexes.
pub fn create_raw_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS RawLog (id INTEGER PRIMARY KEY, runId INTEGER NOT NULL, \
         level TEXT NOT NULL, message TEXT NOT NULL, context TEXT, timestamp TEXT NOT NULL); \
         CREATE INDEX IF NOT EXISTS RawLog_run ON RawLog (runId, timestamp); \
         CREATE INDEX IF NOT EXISTS RawLog_time ON RawLog (timestamp);",
    )
    .map_err(Error::db("create raw table"))
}

/// Inserts `n` rows, `per_tx` rows per transaction.
pub fn raw_insert(conn: &mut Connection, n: usize, per_tx: usize) -> Result<()> {
    let ts = Timestamp::now().to_text();
    let mut done = 0;
    while done < n {
        let k = per_tx.min(n - done);
        super::write_on(conn, "raw insert", |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO RawLog (runId, level, message, context, timestamp) \
                     VALUES (?1, 'info', ?2, '{\"bench\":true,\"i\":1}', ?3)",
                )
                .map_err(Error::db("raw insert"))?;
            for i in 0..k {
                stmt.execute(params![
                    (done + i) as i64 / 100,
                    "processed one more item of the benchmark workload, all fine",
                    ts
                ])
                .map_err(Error::db("raw insert"))?;
            }
            Ok(())
        })?;
        done += k;
    }
    Ok(())
}

/// Runs of `job_name` still QUEUED or RUNNING, from the two indexes that
/// hold those (a few entries each once a drain nears its end): what a
/// drain's end is polled with. Counting the COMPLETED ones instead visits
/// every run of the type and its row on each poll, which beside a large
/// history took a core from the worker it was measuring.
pub fn count_unfinished(conn: &Connection, job_name: &str) -> Result<i64> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM JobRun INDEXED BY JobRun_queue_type \
                 WHERE status = 'QUEUED' AND jobName = ?1) \
              + (SELECT count(*) FROM JobRun INDEXED BY JobRun_status_id \
                 WHERE status = 'RUNNING' AND jobName = ?1)",
    )
    .and_then(|mut s| s.query_row([job_name], |r| r.get(0)))
    .map_err(Error::db("count unfinished runs"))
}

/// Runs of `job_name` in COMPLETED.
pub fn count_completed(conn: &Connection, job_name: &str) -> Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM JobRun WHERE jobName = ?1 AND status = 'COMPLETED'",
        [job_name],
        |r| r.get(0),
    )
    .map_err(Error::db("count completed runs"))
}

/// Inserts `runs` finished runs with `lines_per_run` log lines each, in
/// large transactions, as a history of the last days: younger than the
/// default retention (30 days), so that the worker measured beside it does
/// not spend the scenario deleting it.
pub fn generate_history(conn: &mut Connection, runs: usize, lines_per_run: usize) -> Result<()> {
    let old = Timestamp::now().plus_ms(-10 * 86_400_000);
    generate_history_from(conn, runs, lines_per_run, old, 1)
}

/// [`generate_history`] spread evenly over the last week (the charts'
/// longest window), so that the per-minute rollup has a row per type and
/// minute as a busy week would leave it.
pub fn generate_week(conn: &mut Connection, runs: usize, lines_per_run: usize) -> Result<()> {
    let week = 7 * 86_400_000;
    let step = (week / runs.max(1) as i64).max(1);
    let start = Timestamp::now().plus_ms(-week);
    generate_history_from(conn, runs, lines_per_run, start, step)
}

/// The runs finish `step_ms` apart from `start`, each having taken up to
/// half a second. The connection has triggers on, so the run counters and
/// the rollups (`JobStat`, `RunMinute`) count them as the server's would.
fn generate_history_from(
    conn: &mut Connection,
    runs: usize,
    lines_per_run: usize,
    start: Timestamp,
    step_ms: i64,
) -> Result<()> {
    let chunk = 5_000;
    let mut done = 0;
    while done < runs {
        let k = chunk.min(runs - done);
        super::write_on(conn, "generate history", |tx| {
            let mut run = tx
                .prepare_cached(
                    "INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, \
                     finishedAt, entitiesProcessed, entitiesTotal, outcomeSummary, error, \
                     triggeredBy, updatedAt) VALUES (?1, ?2, '{\"count\":10}', ?3, ?3, ?4, 10, \
                     10, '{\"updates\":10}', ?5, 'cli', ?4)",
                )
                .map_err(Error::db("generate runs"))?;
            let mut line = tx
                .prepare_cached(
                    "INSERT INTO JobLog (jobRunId, level, stage, message, context, timestamp) \
                     VALUES (?1, 'info', 'Processing', 'processed item', '{\"i\":1}', ?2)",
                )
                .map_err(Error::db("generate log lines"))?;
            for i in 0..k {
                let n = done + i;
                let end = start.plus_ms(n as i64 * step_ms);
                let began = end.plus_ms(-((n % 50) as i64) * 10).to_text();
                let ts = end.to_text();
                let (name, status, error) = match n % 10 {
                    0 => ("history-import", "FAILED", Some("connection reset by peer")),
                    1..=3 => ("history-feed", "COMPLETED", None),
                    _ => ("history-scores", "COMPLETED", None),
                };
                run.execute(params![name, status, began, ts, error])
                    .map_err(Error::db("generate runs"))?;
                let id = tx.last_insert_rowid();
                for _ in 0..lines_per_run {
                    line.execute(params![id, ts])
                        .map_err(Error::db("generate log lines"))?;
                }
            }
            Ok(())
        })?;
        done += k;
    }
    conn.execute_batch("PRAGMA optimize")
        .map_err(Error::db("optimize"))
}

/// Inserts `runs` SCHEDULED runs due one second apart from a year ahead, in
/// one statement: runs waiting for later, which the claim must not pay for.
pub fn generate_scheduled(conn: &Connection, runs: usize) -> Result<()> {
    let now = Timestamp::now();
    let ahead = now.plus_ms(365 * 86_400_000);
    conn.execute(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1) \
         INSERT INTO JobRun (jobName, status, createdAt, updatedAt, runAt) \
         SELECT 'bench-later', 'SCHEDULED', ?2, ?2, \
         strftime('%Y-%m-%dT%H:%M:%fZ', ?3 / 1000.0 + i, 'unixepoch') FROM c",
        params![runs as i64, now.to_text(), ahead.0],
    )
    .map(|_| ())
    .map_err(Error::db("generate scheduled runs"))
}

/// Copies the WAL into the database file and truncates it, so a scenario
/// does not pay for the previous bulk load's checkpoint.
pub fn checkpoint(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(Error::db("checkpoint"))
}

/// Sets a run's processed count (the `ws` scenario's committed change).
pub fn set_progress(conn: &Connection, run_id: i64, processed: i64) -> Result<()> {
    conn.execute(
        "UPDATE JobRun SET entitiesProcessed = ?2, updatedAt = ?3 WHERE id = ?1",
        params![run_id, processed, Timestamp::now().to_text()],
    )
    .map(|_| ())
    .map_err(Error::db("set progress"))
}

/// Gives every run of `job_name` its own unique key (`bench-ID`), as if
/// each had been enqueued with `--unique-key`: the unique index then holds
/// them while they wait or run.
pub fn key_runs(conn: &Connection, job_name: &str) -> Result<()> {
    conn.execute(
        "UPDATE JobRun SET uniqueKey = 'bench-' || id WHERE jobName = ?1",
        [job_name],
    )
    .map(|_| ())
    .map_err(Error::db("key runs"))
}

/// The `synchronous` setting of `conn` as SQLite reports it (not as it was
/// asked for): what the bench prints beside every figure.
pub fn synchronous(conn: &Connection) -> Result<String> {
    let level: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(Error::db("read synchronous"))?;
    Ok(match level {
        0 => "OFF".into(),
        1 => "NORMAL".into(),
        2 => "FULL".into(),
        3 => "EXTRA".into(),
        other => format!("unknown ({other})"),
    })
}

impl super::Store {
    /// The `synchronous` setting of this store's connections.
    pub fn synchronous(&self) -> Result<String> {
        synchronous(&*self.conn()?)
    }
}

/// A registered worker holding `runs` RUNNING runs, for measuring the
/// worker's coalesced progress write on its own; returns the worker's id
/// and the runs'.
pub fn running_fixture(conn: &mut Connection, runs: usize) -> Result<(i64, Vec<i64>)> {
    let now = Timestamp::now().to_text();
    super::write_on(conn, "create running runs", |tx| {
        let metadata = serde_json::Map::new();
        let worker = super::workers::insert_worker(
            tx,
            &super::workers::NewWorker {
                hostname: "bench",
                pid: i64::from(std::process::id()),
                version: "bench",
                concurrency: runs as i64,
                metadata: &metadata,
            },
            &now,
        )?;
        let mut ids = Vec::with_capacity(runs);
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO JobRun (jobName, status, createdAt, startedAt, workerId, updatedAt) \
                 VALUES ('bench-progress', 'RUNNING', ?1, ?1, ?2, ?1)",
            )
            .map_err(Error::db("create running runs"))?;
        for _ in 0..runs {
            stmt.execute(params![now, worker.id])
                .map_err(Error::db("create running runs"))?;
            ids.push(tx.last_insert_rowid());
        }
        Ok((worker.id, ids))
    })
}

/// The database's page size in bytes.
pub fn page_size(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(Error::db("read page size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's history is counted in the charts' rollup as the
    /// worker's finishes would be: per type and minute, with durations.
    #[test]
    fn the_generated_week_fills_the_rollup() {
        let file = crate::store::TestFile::new("bench-week");
        crate::store::Store::open(&file.db()).unwrap();
        let mut conn = crate::store::open_connection(&file.db()).unwrap();
        generate_week(&mut conn, 2_000, 1).unwrap();
        let (rows, finished, failed, timed): (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(completed + failed + cancelled), sum(failed), sum(timed) \
                 FROM RunMinute",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!((finished, failed, timed), (2_000, 200, 2_000));
        // A run every ~5 minutes, of three types: a row for each.
        assert!(rows > 1_900, "{rows} rows");
        let sum: i64 = conn
            .query_row("SELECT sum(durationSumMs) FROM RunMinute", [], |r| r.get(0))
            .unwrap();
        let want: i64 = (0..2_000).map(|n| (n % 50) * 10).sum();
        assert_eq!(sum, want);
    }

    #[test]
    fn synchronous_is_read_back_from_the_connection() {
        let conn = Connection::open_in_memory().unwrap();
        for (set, read) in [
            ("OFF", "OFF"),
            ("NORMAL", "NORMAL"),
            ("FULL", "FULL"),
            ("3", "EXTRA"),
        ] {
            conn.pragma_update(None, "synchronous", set).unwrap();
            assert_eq!(synchronous(&conn).unwrap(), read);
        }
    }
}
