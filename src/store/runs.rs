//! Queries on `JobRun` outside the worker's hot path: enqueue, look-ups,
//! history, cancellation, and the resolution of runs whose worker is gone.

use std::borrow::Borrow;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::{Map, Value};

use super::arms::{Arms, QueueGroup};
use super::multirow::Family;
use super::rows::{RUN_COLUMNS, run_from_row};
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus};

/// A run to insert, with its JSON already encoded (by the caller's thread,
/// so the committer thread only writes). The job name and the metadata are
/// shared: runs enqueued together usually have the same.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub job_name: Arc<str>,
    pub parameters: String,
    pub priority: i64,
    pub trigger: &'static str,
    pub rerun_of: Option<i64>,
    pub metadata: Arc<str>,
    /// When set, the run is SCHEDULED until then (the caller passes only
    /// times still to come); otherwise it is QUEUED at once.
    pub run_at: Option<String>,
}

impl NewRun {
    /// Encodes the parameters.
    pub fn new(
        job_name: Arc<str>,
        parameters: &Map<String, Value>,
        priority: i64,
        trigger: &'static str,
        rerun_of: Option<i64>,
        metadata: Arc<str>,
    ) -> NewRun {
        NewRun {
            job_name,
            parameters: serde_json::to_string(parameters).unwrap_or_else(|_| "{}".into()),
            priority,
            trigger,
            rerun_of,
            metadata,
            run_at: None,
        }
    }

    /// The same run, SCHEDULED for `at`.
    pub fn at(mut self, at: Option<String>) -> NewRun {
        self.run_at = at;
        self
    }

    /// Whether `self` and `other` differ only in their parameters and
    /// priority, so one statement can bind the rest once for both.
    fn same_but_parameters(&self, other: &NewRun) -> bool {
        self.job_name == other.job_name
            && self.trigger == other.trigger
            && self.metadata == other.metadata
            && self.rerun_of.is_none()
            && other.rerun_of.is_none()
            && self.run_at.is_none()
            && other.run_at.is_none()
    }
}

/// Inserts up to 128 runs per statement; ?1 is `now`. A plain VALUES list
/// (no INSERT … SELECT) keeps the common one-run enqueue as cheap as a
/// single-row insert. A run with a `runAt` is SCHEDULED.
static RUN_INSERT: Family = Family::new(128, |n| {
    run_insert_sql(n, |i| {
        let b = 2 + i * 7;
        let at = b + 6;
        format!(
            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, \
             CASE WHEN ?{at} IS NULL THEN 'QUEUED' ELSE 'SCHEDULED' END, ?1, ?1, ?{at})",
            b,
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5
        )
    })
});

/// The same for runs that differ only in parameters and priority (a bulk
/// enqueue of one job type): the name (?2), trigger (?3) and metadata (?4)
/// are bound once per statement. Each bound text is copied, and binding was
/// a tenth of a bulk enqueue's time.
static UNIFORM_RUN_INSERT: Family = Family::new(128, |n| {
    run_insert_sql(n, |i| {
        let b = 5 + i * 2;
        format!(
            "(?2, ?{}, ?{}, NULL, ?3, ?4, 'QUEUED', ?1, ?1, NULL)",
            b,
            b + 1
        )
    })
});

/// `INSERT … VALUES` of `n` tuples, the `i`th written by `tuple(i)`.
fn run_insert_sql(n: usize, tuple: impl Fn(usize) -> String) -> String {
    let tuples: Vec<String> = (0..n).map(tuple).collect();
    format!(
        "INSERT INTO JobRun (jobName, parameters, priority, rerunOfId, triggeredBy, metadata, \
         status, createdAt, updatedAt, runAt) VALUES {}",
        tuples.join(", ")
    )
}

/// Inserts QUEUED runs (SCHEDULED ones for those with a `runAt`); returns
/// their ids in order. `tx` is in a write transaction (a `Transaction`, or
/// the committer's connection inside its own BEGIN).
pub fn insert_runs<R: Borrow<NewRun>>(tx: &Connection, runs: &[R], now: &str) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(runs.len());
    for chunk in RUN_INSERT.chunks(runs) {
        let first = chunk[0].borrow();
        let uniform = chunk.iter().all(|r| first.same_but_parameters(r.borrow()));
        let (family, shared, per_row) = if uniform {
            (&UNIFORM_RUN_INSERT, 4, 2)
        } else {
            (&RUN_INSERT, 1, 7)
        };
        let mut stmt = tx
            .prepare_cached(family.sql(chunk.len()))
            .map_err(Error::db("enqueue run"))?;
        let mut args: Vec<&dyn rusqlite::ToSql> =
            Vec::with_capacity(shared + chunk.len() * per_row);
        args.push(&now);
        if uniform {
            args.extend_from_slice(&[
                &first.job_name as &dyn rusqlite::ToSql,
                &first.trigger,
                &first.metadata,
            ]);
        }
        for r in chunk {
            let r = r.borrow();
            if uniform {
                args.extend_from_slice(&[&r.parameters as &dyn rusqlite::ToSql, &r.priority]);
            } else {
                args.extend_from_slice(&[
                    &r.job_name as &dyn rusqlite::ToSql,
                    &r.parameters,
                    &r.priority,
                    &r.rerun_of,
                    &r.trigger,
                    &r.metadata,
                    &r.run_at,
                ]);
            }
        }
        stmt.execute(args.as_slice())
            .map_err(Error::db("enqueue run"))?;
        // Each new row gets the largest id so far plus one, and this
        // transaction holds the write lock: the chunk's ids are the
        // consecutive ones ending at the last. (RETURNING would cost a
        // temporary table per statement.) Only ids near i64::MAX make
        // SQLite pick ids at random; refuse to go there.
        let last = tx.last_insert_rowid();
        if last > i64::MAX - (1 << 32) {
            return Err(Error::Internal("run ids are exhausted".into()));
        }
        ids.extend(last - chunk.len() as i64 + 1..=last);
    }
    // The total needs no counting: these ids are the largest plus one (see
    // `counts`). SCHEDULED runs have a counter of their own.
    if super::counts::by_hand(tx)? {
        let scheduled = runs
            .iter()
            .filter(|r| Borrow::<NewRun>::borrow(*r).run_at.is_some())
            .count();
        super::counts::add_status(tx, JobStatus::Scheduled, scheduled as i64)?;
    }
    Ok(ids)
}

/// One run by id.
pub fn get_run(conn: &Connection, id: i64) -> Result<Option<JobRun>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM JobRun WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], run_from_row).optional())
        .map_err(Error::db("read run"))
}

pub use super::orphans::{OrphanRun, cancel_orphan, fail_orphan, orphan_runs, requeue_orphan};
pub use crate::query::RunFilter;

/// The history page for `filter`. The queue's groups are read in the same
/// snapshot as the page, so a page never misses a queued run.
pub fn list_runs(conn: &Connection, filter: &RunFilter) -> Result<Vec<JobRun>> {
    // Deferred: the connections default to IMMEDIATE, which would take the
    // write lock for a read.
    let tx = Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        .map_err(Error::db("list runs"))?;
    let groups = super::arms::groups_for(&tx, filter)?;
    let (sql, args) = history_query(filter, &groups);
    let mut stmt = tx.prepare_cached(&sql).map_err(Error::db("list runs"))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter().map(sql_value)), run_from_row)
        .map_err(Error::db("list runs"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("list runs"))
}

/// The SQL and arguments of the history page, with `groups` the queue's
/// (see `arms`) when the filter asks for QUEUED runs (public for the plan
/// test).
pub fn history_query(filter: &RunFilter, groups: &[QueueGroup]) -> (String, Vec<Value>) {
    let head = format!("SELECT {RUN_COLUMNS}");
    let extra = filter
        .before_id
        .map(|before| (" AND id < ?".to_string(), vec![Value::from(before)]))
        .into_iter()
        .collect();
    let arms = Arms {
        head: &head,
        filter,
        extra,
        groups: Some(groups),
    };
    let (mut sql, mut args) = arms.sql();
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Value::from(filter.limit as i64));
    (sql, args)
}

/// Appends the ` AND ...` conditions of `filter` other than its statuses
/// (name, search, time range; not the page cursor) to `sql`, and their
/// arguments: the history and the bulk actions select runs the same way,
/// each status an arm of its own (see `arms`).
pub(super) fn filter_clauses(filter: &RunFilter, sql: &mut String, args: &mut Vec<Value>) {
    if let Some(name) = &filter.name {
        sql.push_str(" AND jobName = ?");
        args.push(Value::from(name.as_str()));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", escape_like(q));
        sql.push_str(
            " AND (jobName LIKE ? ESCAPE '\\' OR parameters LIKE ? ESCAPE '\\' \
             OR error LIKE ? ESCAPE '\\')",
        );
        args.extend(std::iter::repeat_n(Value::from(pattern), 3));
    }
    if let Some(since) = &filter.since {
        sql.push_str(" AND createdAt >= ?");
        args.push(Value::from(since.as_str()));
    }
    if let Some(until) = &filter.until {
        sql.push_str(" AND createdAt < ?");
        args.push(Value::from(until.as_str()));
    }
}

pub(super) fn sql_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Number(n) => rusqlite::types::Value::Integer(n.as_i64().unwrap_or(0)),
        Value::String(s) => rusqlite::types::Value::Text(s.clone()),
        _ => rusqlite::types::Value::Null,
    }
}

fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Runs in the given status, oldest first (the active-runs panel).
pub fn runs_in_status(conn: &Connection, status: JobStatus, limit: usize) -> Result<Vec<JobRun>> {
    let op = "list runs by status";
    let tx = Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        .map_err(Error::db(op))?;
    let filter = RunFilter {
        statuses: vec![status],
        ..RunFilter::default()
    };
    let groups = super::arms::groups_for(&tx, &filter)?;
    let head = format!("SELECT {RUN_COLUMNS}");
    let arms = Arms {
        head: &head,
        filter: &filter,
        extra: Vec::new(),
        groups: Some(&groups),
    };
    let (mut sql, mut args) = arms.sql();
    sql.push_str(" ORDER BY id LIMIT ?");
    args.push(Value::from(limit as i64));
    tx.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(args.iter().map(sql_value)), run_from_row)?
                .collect()
        })
        .map_err(Error::db(op))
}

/// Cancels a run that has not started (QUEUED or SCHEDULED) at once;
/// false when it is in neither.
pub fn cancel_queued(tx: &Transaction<'_>, id: i64, now: &str) -> Result<bool> {
    tx.execute(
        "UPDATE JobRun SET status = 'CANCELLED', finishedAt = ?2, updatedAt = ?2, \
         cancelRequestedAt = ?2, error = 'cancelled before it started' \
         WHERE id = ?1 AND status IN ('QUEUED', 'SCHEDULED', 'WAITING')",
        params![id, now],
    )
    .map(|n| n == 1)
    .map_err(Error::db("cancel run"))
}

/// Asks the worker to cancel a RUNNING run; false when it is not RUNNING.
pub fn request_cancel(tx: &Transaction<'_>, id: i64, now: &str) -> Result<bool> {
    tx.execute(
        "UPDATE JobRun SET cancelRequestedAt = coalesce(cancelRequestedAt, ?2), updatedAt = ?2 \
         WHERE id = ?1 AND status = 'RUNNING'",
        params![id, now],
    )
    .map(|n| n == 1)
    .map_err(Error::db("request cancel"))
}

/// Number of runs per status, every status present. The finished ones and
/// the total come from the counters the triggers of `JobRunCount` keep, so
/// the cost does not grow with history; RUNNING runs are few and counted;
/// QUEUED is what remains.
pub fn count_by_status(conn: &Connection) -> Result<Vec<(JobStatus, i64)>> {
    // One snapshot for all the counts, so QUEUED (the remainder) is never
    // computed across a commit.
    // Deferred: the connections default to IMMEDIATE, which would take the
    // write lock for a read.
    let tx = Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        .map_err(Error::db("count runs"))?;
    let conn: &Connection = &tx;
    let mut stmt = conn
        .prepare_cached("SELECT n FROM JobRunCount WHERE status = ?1")
        .map_err(Error::db("count runs"))?;
    let mut counter = |key: &str| -> Result<i64> {
        stmt.query_row([key], |r| r.get(0))
            .optional()
            .map(|n| n.unwrap_or(0))
            .map_err(Error::db("count runs"))
    };
    let all = counter("ALL")?;
    let mut counts = Vec::with_capacity(JobStatus::ALL.len());
    for s in JobStatus::ALL {
        let n = match s {
            JobStatus::Queued => 0,
            // Kept by the triggers like the finished ones.
            JobStatus::Scheduled => counter(s.as_str())?,
            JobStatus::Running => conn
                .prepare_cached("SELECT count(*) FROM JobRun WHERE status = 'RUNNING'")
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(Error::db("count running runs"))?,
            _ => counter(s.as_str())?,
        };
        counts.push((s, n));
    }
    let others: i64 = counts.iter().map(|(_, n)| n).sum();
    if let Some(q) = counts.iter_mut().find(|(s, _)| *s == JobStatus::Queued) {
        q.1 = (all - others).max(0);
    }
    Ok(counts)
}

/// Records the process group of a command job's program in the run's
/// metadata (`pgid`), so recovery can kill it if the worker dies. Fenced:
/// only while `worker_id` still runs it. Returns whether it was recorded.
pub fn set_run_pgid(conn: &Connection, run_id: i64, worker_id: i64, pgid: i64) -> Result<bool> {
    conn.execute(
        "UPDATE JobRun SET metadata = json_set(metadata, '$.pgid', ?3) \
         WHERE id = ?1 AND workerId = ?2 AND status = 'RUNNING'",
        params![run_id, worker_id, pgid],
    )
    .map(|n| n == 1)
    .map_err(Error::db("record process group"))
}

/// Puts a RUNNING run held by `worker_id` (or by none) back in the queue
/// as a new attempt, with `note` as its `requeuedAfter`; false when the run
/// is not in that state any more (another process resolved it). Shared by
/// the worker (runs it gives back) and recovery (runs of a lost worker).
pub fn requeue(
    tx: &Transaction<'_>,
    id: i64,
    worker_id: Option<i64>,
    note: Option<&str>,
    now: &str,
) -> Result<bool> {
    tx.prepare_cached(
        "UPDATE JobRun SET status = 'QUEUED', attempt = attempt + 1, workerId = NULL, \
         startedAt = NULL, currentStage = NULL, entitiesProcessed = 0, entitiesTotal = NULL, \
         entitiesUnit = NULL, cancelRequestedAt = NULL, updatedAt = ?2, \
         metadata = json_set(metadata, '$.requeuedAfter', ?3) \
         WHERE id = ?1 AND status = 'RUNNING' AND workerId IS ?4",
    )
    .and_then(|mut s| s.execute(params![id, now, note, worker_id]))
    .map(|n| n == 1)
    .map_err(Error::db("requeue run"))
}
