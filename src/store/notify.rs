//! The notification outbox (`NotifyOutbox`), the scan's cursors
//! (`NotifyCursor`), and the reads the scan finds events with: failed
//! runs since a `finishedAt`, overdue runs, missed schedule ticks.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::notify::DeliveryStatus;

/// A row to queue.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub event: &'static str,
    pub subject: String,
    pub notifier: String,
    pub run_id: Option<i64>,
    pub job: Option<String>,
    pub payload: String,
    /// Creation time, and when the first attempt is due.
    pub at: String,
}

/// Inserts `rows`, skipping any (event, subject, notifier) already
/// queued; returns how many were added.
pub fn insert(conn: &Connection, rows: &[NewRow]) -> Result<usize> {
    const OP: &str = "queue notifications";
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO NotifyOutbox (event, subject, notifier, runId, jobName, payload, \
             nextAttemptAt, createdAt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
             ON CONFLICT (event, subject, notifier) DO NOTHING",
        )
        .map_err(Error::db(OP))?;
    let mut added = 0;
    for r in rows {
        added += stmt
            .execute(params![
                r.event, r.subject, r.notifier, r.run_id, r.job, r.payload, r.at
            ])
            .map_err(Error::db(OP))?;
    }
    Ok(added)
}

/// One outbox row, as delivered and shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub subject: String,
    pub notifier: String,
    pub run_id: Option<i64>,
    pub job_name: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    #[serde(skip)]
    pub payload: String,
}

const COLUMNS: &str = "id, event, subject, notifier, runId, jobName, status, attempts, \
                       nextAttemptAt, lastError, createdAt, deliveredAt, payload";

fn delivery(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        event: r.get(1)?,
        subject: r.get(2)?,
        notifier: r.get(3)?,
        run_id: r.get(4)?,
        job_name: r.get(5)?,
        status: DeliveryStatus::parse(&r.get::<_, String>(6)?).unwrap_or(DeliveryStatus::Failed),
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        delivered_at: r.get(11)?,
        payload: r.get(12)?,
    })
}

fn collect<P: rusqlite::Params>(
    conn: &Connection,
    op: &'static str,
    sql: &str,
    p: P,
) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db(op))?;
    let rows = stmt.query_map(p, delivery).map_err(Error::db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(op))
}

/// The pending rows due at `now`, oldest due first (a plain read).
pub fn due(conn: &Connection, now: &str, limit: usize) -> Result<Vec<Delivery>> {
    collect(
        conn,
        "read due notifications",
        &format!(
            "SELECT {COLUMNS} FROM NotifyOutbox INDEXED BY NotifyOutbox_due \
             WHERE status = 'PENDING' AND nextAttemptAt <= ?1 ORDER BY nextAttemptAt, id LIMIT ?2"
        ),
        params![now, limit as i64],
    )
}

/// What one attempt came to.
pub enum Outcome<'a> {
    Delivered,
    /// Try again at `next_at`.
    Retry {
        next_at: &'a str,
        error: &'a str,
    },
    /// Give up.
    Failed {
        error: &'a str,
    },
}

/// Records attempt number `attempts` of row `id` (still PENDING, so a
/// row already settled is left alone); returns whether it changed.
pub fn record(
    conn: &Connection,
    id: i64,
    attempts: i64,
    outcome: Outcome<'_>,
    now: &str,
) -> Result<bool> {
    const OP: &str = "record notification attempt";
    let n = match outcome {
        Outcome::Delivered => conn.execute(
            "UPDATE NotifyOutbox SET status = 'DELIVERED', attempts = ?2, deliveredAt = ?3 \
             WHERE id = ?1 AND status = 'PENDING'",
            params![id, attempts, now],
        ),
        Outcome::Retry { next_at, error } => conn.execute(
            "UPDATE NotifyOutbox SET attempts = ?2, nextAttemptAt = ?3, lastError = ?4 \
             WHERE id = ?1 AND status = 'PENDING'",
            params![id, attempts, next_at, error],
        ),
        Outcome::Failed { error } => conn.execute(
            "UPDATE NotifyOutbox SET status = 'FAILED', attempts = ?2, lastError = ?3 \
             WHERE id = ?1 AND status = 'PENDING'",
            params![id, attempts, error],
        ),
    }
    .map_err(Error::db(OP))?;
    Ok(n > 0)
}

/// The newest rows (by id, below `before` when given), of `status` when
/// given.
pub fn list(
    conn: &Connection,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    collect(
        conn,
        "list notifications",
        &format!(
            "SELECT {COLUMNS} FROM NotifyOutbox WHERE (?1 IS NULL OR status = ?1) \
             AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
        ),
        params![status.map(DeliveryStatus::as_str), before, limit as i64],
    )
}

/// Rows by status (as stored).
pub fn counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    const OP: &str = "count notifications";
    let mut stmt = conn
        .prepare_cached("SELECT status, count(*) FROM NotifyOutbox GROUP BY status")
        .map_err(Error::db(OP))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(Error::db(OP))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(OP))
}

/// The newest row whose last attempt failed and that is not delivered
/// (FAILED, or PENDING for a retry), if any.
pub fn last_failure(conn: &Connection) -> Result<Option<Delivery>> {
    Ok(collect(
        conn,
        "read the last failed notification",
        &format!(
            "SELECT {COLUMNS} FROM NotifyOutbox WHERE lastError IS NOT NULL \
             AND status IN ('PENDING', 'FAILED') ORDER BY id DESC LIMIT 1"
        ),
        [],
    )?
    .pop())
}

/// The cursor `name`, if set.
pub fn cursor(conn: &Connection, name: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT value FROM NotifyCursor WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::db("read notification cursor"))
}

/// Sets the cursor `name`.
pub fn set_cursor(conn: &Connection, name: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO NotifyCursor (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )
    .map_err(Error::db("move notification cursor"))?;
    Ok(())
}

/// A run an event is about.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub job_name: String,
    pub status: String,
    pub error: Option<String>,
    pub attempt: i64,
    /// finishedAt for failed runs; the time overdue counts from otherwise.
    pub at: String,
    pub scheduled_for: Option<String>,
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        job_name: r.get(1)?,
        status: r.get(2)?,
        error: r.get(3)?,
        attempt: r.get(4)?,
        at: r.get(5)?,
        scheduled_for: r.get(6)?,
    })
}

fn runs<P: rusqlite::Params>(conn: &Connection, sql: &str, p: P) -> Result<Vec<RunRow>> {
    const OP: &str = "find runs to notify about";
    let mut stmt = conn.prepare_cached(sql).map_err(Error::db(OP))?;
    let rows = stmt.query_map(p, run_row).map_err(Error::db(OP))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(OP))
}

/// The query of [`failed_since`] (public for the plan test). It walks the
/// index of FAILED runs (V21, V22): through the index of every finish it
/// read each run finished past the cursor to find the failed ones, and the
/// cursor only moves with what it finds, so on a host whose runs all
/// succeed every scan read every run since the last failure.
pub(crate) const FAILED_SINCE_SQL: &str = "SELECT id, jobName, status, error, attempt, \
     finishedAt, scheduledFor FROM JobRun INDEXED BY JobRun_failed \
     WHERE status = 'FAILED' AND finishedAt > ?1 AND (?2 IS NULL OR finishedAt <= ?2) \
     AND NOT EXISTS (SELECT 1 FROM NotifyOutbox o WHERE o.event = 'run_failed' \
                     AND o.subject = 'run:' || JobRun.id) \
     ORDER BY finishedAt, id LIMIT ?3";

/// FAILED runs that finished after `after` (and not after `upto`, when
/// given) and have no `run_failed` row yet, oldest first.
pub fn failed_since(
    conn: &Connection,
    after: &str,
    upto: Option<&str>,
    limit: usize,
) -> Result<Vec<RunRow>> {
    runs(conn, FAILED_SINCE_SQL, params![after, upto, limit as i64])
}

/// The query of [`overdue`] (public for the plan test): two arms, each on
/// the index that holds its status (QUEUED runs are only in the queue
/// index, V20), so the walk grows with the unfinished runs, never with the
/// history.
pub(crate) const OVERDUE_SQL: &str = "SELECT id, jobName, status, error, attempt, coalesce(scheduledFor, startedAt), \
            scheduledFor FROM JobRun \
     WHERE status = 'RUNNING' AND coalesce(scheduledFor, startedAt) < ?1 \
     AND (?3 IS NULL OR jobName IN (SELECT value FROM json_each(?3))) \
     AND NOT EXISTS (SELECT 1 FROM NotifyOutbox o WHERE o.event = 'run_overdue' \
                     AND o.subject = 'run:' || JobRun.id AND o.notifier = ?2) \
     UNION ALL \
     SELECT id, jobName, status, error, attempt, coalesce(scheduledFor, startedAt), \
            scheduledFor FROM JobRun INDEXED BY JobRun_queue_type \
     WHERE status = 'QUEUED' AND scheduledFor < ?1 \
     AND (?3 IS NULL OR jobName IN (SELECT value FROM json_each(?3))) \
     AND NOT EXISTS (SELECT 1 FROM NotifyOutbox o WHERE o.event = 'run_overdue' \
                     AND o.subject = 'run:' || JobRun.id AND o.notifier = ?2) \
     ORDER BY id LIMIT ?4";

/// Unfinished runs past `cutoff` that `notifier` has no `run_overdue` row
/// for (of the job types in `jobs`, a JSON array, when given): RUNNING
/// ones that were due (a schedule's run) or else started before it, and
/// QUEUED ones a schedule made that were due before it.
pub fn overdue(
    conn: &Connection,
    cutoff: &str,
    notifier: &str,
    jobs: Option<&str>,
    limit: usize,
) -> Result<Vec<RunRow>> {
    runs(
        conn,
        OVERDUE_SQL,
        params![cutoff, notifier, jobs, limit as i64],
    )
}

/// A missed due time.
#[derive(Debug, Clone)]
pub struct MissedTick {
    pub id: i64,
    pub schedule: String,
    /// The schedule's job, if the schedule still exists.
    pub job: Option<String>,
    pub due_at: String,
    pub reason: Option<String>,
}

/// `SKIPPED_MISSED` ticks after id `after` up to id `upto`, oldest first.
pub fn missed_ticks(
    conn: &Connection,
    after: i64,
    upto: i64,
    limit: usize,
) -> Result<Vec<MissedTick>> {
    const OP: &str = "find missed schedule ticks";
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.id, t.scheduleName, s.job, t.dueAt, t.reason FROM ScheduleTick t \
             LEFT JOIN Schedule s ON s.name = t.scheduleName \
             WHERE t.id > ?1 AND t.id <= ?2 AND t.outcome = 'SKIPPED_MISSED' ORDER BY t.id LIMIT ?3",
        )
        .map_err(Error::db(OP))?;
    let rows = stmt
        .query_map(params![after, upto, limit as i64], |r| {
            Ok(MissedTick {
                id: r.get(0)?,
                schedule: r.get(1)?,
                job: r.get(2)?,
                due_at: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .map_err(Error::db(OP))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(OP))
}

/// The highest ScheduleTick id (0 when there is none).
pub fn last_tick(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM ScheduleTick", [], |r| {
        r.get(0)
    })
    .map_err(Error::db("read last schedule tick"))
}

/// Deletes settled rows created before `before`; returns how many.
pub fn prune(conn: &Connection, before: &str) -> Result<usize> {
    conn.execute(
        "DELETE FROM NotifyOutbox WHERE status IN ('DELIVERED', 'FAILED') AND createdAt < ?1",
        [before],
    )
    .map_err(Error::db("prune notifications"))
}

/// Whether any settled row was created before `before` (a plain read).
pub fn any_to_prune(conn: &Connection, before: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM NotifyOutbox WHERE status IN ('DELIVERED', 'FAILED') \
         AND createdAt < ?1)",
        [before],
        |r| r.get(0),
    )
    .map_err(Error::db("find old notifications"))
}
