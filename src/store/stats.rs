//! The rollups `GET /metrics` reads (`JobStat`, `MetricCounter`,
//! `ScheduleTickStat`, see migration V14): written by hand on the bulk
//! writers' connections, one statement per group per commit, and read with
//! queries whose cost is bounded by the number of job types, schedules and
//! unfinished runs, never by the history.
//!
//! Connections with triggers on count through the V14 triggers; the bulk
//! writers (triggers off, see [`super::counts`]) call the functions here.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{Connection, Transaction, params};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// The upper bounds of the duration histogram's buckets, in milliseconds,
/// in the order of the `le*` columns of `JobStat`.
pub const BUCKETS_MS: [i64; 10] = [
    100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];

const BUCKET_COLUMNS: &str = "le100ms, le500ms, le1s, le5s, le10s, le30s, le1m, le5m, le15m, le1h";

/// Adds one (job, status) group's figures to `JobStat`.
static JOB_STAT_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let updates: Vec<String> = BUCKET_COLUMNS
        .split(", ")
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO JobStat (jobName, status, n, timed, durationSumMs, {BUCKET_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (jobName, status) DO UPDATE SET n = n + excluded.n, \
         timed = timed + excluded.timed, \
         durationSumMs = durationSumMs + excluded.durationSumMs, {}",
        updates.join(", ")
    )
});

/// Counts finished runs, given as (job, status, when the attempt started),
/// into `JobStat` with one UPSERT per (job, status) among them. The writer
/// knows each run's type and start from its claim, so nothing is read back,
/// and the durations are bucketed here rather than in SQL (date parsing and
/// ten CASEs per run cost the group commit more than the finish itself).
/// Called only by connections with triggers off (the triggers count for the
/// others).
pub fn count_finished<'a>(
    tx: &Transaction<'_>,
    runs: impl Iterator<Item = (&'a str, &'a str, Option<Timestamp>)>,
    now: &str,
) -> Result<()> {
    let op = "count finished runs";
    let finished_ms = Timestamp::parse(now).map(|t| t.0);
    let mut groups: BTreeMap<(&str, &str), Rollup> = BTreeMap::new();
    for (job, status, started) in runs {
        let duration = started.zip(finished_ms).map(|(s, f)| (f - s.0).max(0));
        groups.entry((job, status)).or_default().add(duration);
    }
    if groups.is_empty() {
        return Ok(());
    }
    let mut write = tx.prepare_cached(&JOB_STAT_UPSERT).map_err(Error::db(op))?;
    for ((job, status), g) in &groups {
        let b = &g.buckets;
        write
            .execute(params![
                job, status, g.n, g.timed, g.sum_ms, b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                b[7], b[8], b[9]
            ])
            .map_err(Error::db(op))?;
    }
    Ok(())
}

/// The figures of one (job, status) group in one commit.
#[derive(Default)]
struct Rollup {
    n: i64,
    timed: i64,
    sum_ms: i64,
    buckets: [i64; 10],
}

impl Rollup {
    fn add(&mut self, duration_ms: Option<i64>) {
        self.n += 1;
        if let Some(d) = duration_ms {
            self.timed += 1;
            self.sum_ms += d;
            for (count, le) in self.buckets.iter_mut().zip(BUCKETS_MS) {
                if d <= le {
                    *count += 1;
                }
            }
        }
    }
}

/// Counts one attempt of `job` put aside to be tried again, on a connection
/// with triggers off.
pub fn count_retry(tx: &Transaction<'_>, job: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO RetryStat (jobName, n) VALUES (?1, 1) \
         ON CONFLICT (jobName) DO UPDATE SET n = n + 1",
    )
    .and_then(|mut s| s.execute([job]))
    .map(|_| ())
    .map_err(Error::db("count a retry"))
}

/// Attempts tried again, per job type.
pub fn retries(conn: &Connection) -> Result<Vec<(String, i64)>> {
    conn.prepare_cached("SELECT jobName, n FROM RetryStat ORDER BY jobName")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(Error::db("read retry counts"))
}

/// Counts `n` log lines written by a connection with triggers off.
pub fn count_log_lines(tx: &Transaction<'_>, n: usize) -> Result<()> {
    if n == 0 || !super::counts::by_hand(tx)? {
        return Ok(());
    }
    tx.prepare_cached("UPDATE MetricCounter SET n = n + ?1 WHERE name = 'log_lines'")
        .and_then(|mut s| s.execute([n as i64]))
        .map(|_| ())
        .map_err(Error::db("count log lines"))
}

/// Counts ledger rows written by a connection with triggers off, given as
/// (schedule, outcome) → rows.
pub fn count_ticks(tx: &Transaction<'_>, ticks: &BTreeMap<(String, &str), i64>) -> Result<()> {
    if ticks.is_empty() || !super::counts::by_hand(tx)? {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO ScheduleTickStat (scheduleName, outcome, n) VALUES (?1, ?2, ?3) \
             ON CONFLICT (scheduleName, outcome) DO UPDATE SET n = n + excluded.n",
        )
        .map_err(Error::db("count schedule ticks"))?;
    for ((name, outcome), n) in ticks {
        stmt.execute(params![name, outcome, n])
            .map_err(Error::db("count schedule ticks"))?;
    }
    Ok(())
}

/// One row of `JobStat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatRow {
    pub job: String,
    pub status: String,
    pub n: i64,
    /// Runs with a duration, and the sum of their durations.
    pub timed: i64,
    pub duration_sum_ms: i64,
    /// Cumulative counts per bucket of [`BUCKETS_MS`].
    pub buckets: [i64; 10],
}

/// Every row of `JobStat`, by job and status.
pub fn job_stats(conn: &Connection) -> Result<Vec<JobStatRow>> {
    let sql = format!(
        "SELECT jobName, status, n, timed, durationSumMs, {BUCKET_COLUMNS} FROM JobStat \
         ORDER BY jobName, status"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map([], |r| {
                let mut buckets = [0; 10];
                for (i, b) in buckets.iter_mut().enumerate() {
                    *b = r.get(5 + i)?;
                }
                Ok(JobStatRow {
                    job: r.get(0)?,
                    status: r.get(1)?,
                    n: r.get(2)?,
                    timed: r.get(3)?,
                    duration_sum_ms: r.get(4)?,
                    buckets,
                })
            })?
            .collect()
        })
        .map_err(Error::db("read run statistics"))
}

/// Unfinished runs of one job type in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub job: String,
    pub status: String,
    pub n: i64,
    /// The oldest run's time: when it became due (`runAt`) or was created.
    pub oldest: String,
}

/// The unfinished runs per type and status (public for the plan test).
pub(crate) const UNFINISHED_SQL: &str = "WITH u AS (SELECT jobName, status, coalesce(runAt, createdAt) AS at FROM JobRun \
       INDEXED BY JobRun_status_id WHERE status = 'SCHEDULED' \
     UNION ALL SELECT jobName, status, coalesce(runAt, createdAt) FROM JobRun \
       INDEXED BY JobRun_status_id WHERE status = 'WAITING' \
     UNION ALL SELECT jobName, status, coalesce(runAt, createdAt) FROM JobRun \
       INDEXED BY JobRun_status_id WHERE status = 'RUNNING' \
     UNION ALL SELECT jobName, status, coalesce(runAt, createdAt) FROM JobRun \
       INDEXED BY JobRun_queue_type WHERE status = 'QUEUED') \
     SELECT jobName, status, count(*), min(at) FROM u \
     GROUP BY jobName, status ORDER BY jobName, status";

/// Runs per job type in SCHEDULED, WAITING, QUEUED and RUNNING. One pass over the
/// `(status, id)` index for the first, the second and the last, and over the
/// queue index for QUEUED (V20), with a row look-up each: its cost grows with
/// the unfinished runs (the backlog), never with the finished history.
pub fn unfinished(conn: &Connection) -> Result<Vec<Unfinished>> {
    conn.prepare_cached(UNFINISHED_SQL)
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(Unfinished {
                    job: r.get(0)?,
                    status: r.get(1)?,
                    n: r.get(2)?,
                    oldest: r.get(3)?,
                })
            })?
            .collect()
        })
        .map_err(Error::db("count unfinished runs"))
}

/// A label-less counter of `MetricCounter` (0 when missing).
pub fn counter(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(n), 0) FROM MetricCounter WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
        .map_err(Error::db("read counter"))
}

/// Ledger rows per (schedule, outcome).
pub fn schedule_ticks(conn: &Connection) -> Result<Vec<(String, String, i64)>> {
    conn.prepare_cached(
        "SELECT scheduleName, outcome, n FROM ScheduleTickStat ORDER BY scheduleName, outcome",
    )
    .and_then(|mut s| {
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    })
    .map_err(Error::db("read schedule tick counts"))
}

/// Runs `f` in one deferred read transaction, so the values it reads come
/// from one snapshot (the connections default to IMMEDIATE, which would
/// take the write lock for a read).
pub fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        .map_err(Error::db("read metrics"))?;
    f(&tx)
}
