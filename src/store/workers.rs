//! Queries on `Worker`: registration, heartbeat, state changes, stop
//! requests and stale-worker detection.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use super::rows::{WORKER_COLUMNS, worker_from_row};
use crate::error::{Error, Result};
use crate::worker::{WorkerRow, WorkerState, WriterLoad};

/// What a new worker says about itself.
pub struct NewWorker<'a> {
    pub hostname: &'a str,
    pub pid: i64,
    pub version: &'a str,
    pub concurrency: i64,
    pub metadata: &'a Map<String, Value>,
}

/// Extended result code of a UNIQUE constraint failure.
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// Inserts the worker row as STARTING. Fails with [`Error::WorkerRunning`]
/// when the one-active-worker index already holds a row.
pub fn insert_worker(tx: &Transaction<'_>, w: &NewWorker<'_>, now: &str) -> Result<WorkerRow> {
    let res = tx.execute(
        "INSERT INTO Worker (hostname, pid, version, state, concurrency, startedAt, heartbeatAt, \
         metadata) VALUES (?1, ?2, ?3, 'STARTING', ?4, ?5, ?5, ?6)",
        params![
            w.hostname,
            w.pid,
            w.version,
            w.concurrency,
            now,
            Value::Object(w.metadata.clone()).to_string()
        ],
    );
    match res {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Err(Error::WorkerRunning(
                "another worker registered at the same moment".into(),
            ));
        }
        Err(e) => return Err(Error::db("register worker")(e)),
    }
    let id = tx.last_insert_rowid();
    tx.query_row(
        &format!("SELECT {WORKER_COLUMNS} FROM Worker WHERE id = ?1"),
        [id],
        worker_from_row,
    )
    .map_err(Error::db("register worker"))
}

/// The active worker, if any.
pub fn active_worker(conn: &Connection) -> Result<Option<WorkerRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WORKER_COLUMNS} FROM Worker \
         WHERE state IN ('STARTING', 'RUNNING', 'STOPPING') ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([], worker_from_row).optional())
    .map_err(Error::db("read worker"))
}

/// The most recently registered worker, whatever its state.
pub fn latest_worker(conn: &Connection) -> Result<Option<WorkerRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WORKER_COLUMNS} FROM Worker ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([], worker_from_row).optional())
    .map_err(Error::db("read worker"))
}

/// One worker by id.
pub fn get_worker(conn: &Connection, id: i64) -> Result<Option<WorkerRow>> {
    conn.prepare_cached(&format!(
        "SELECT {WORKER_COLUMNS} FROM Worker WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], worker_from_row).optional())
    .map_err(Error::db("read worker"))
}

/// Moves a worker to `next`, stamping the matching time column. Returns
/// false when the row is no longer in a state that allows the move (for
/// example it was declared dead meanwhile).
pub fn set_state(tx: &Transaction<'_>, id: i64, next: WorkerState, now: &str) -> Result<bool> {
    let from: Vec<&str> = [
        WorkerState::Starting,
        WorkerState::Running,
        WorkerState::Stopping,
    ]
    .into_iter()
    .filter(|s| s.can_become(next))
    .map(WorkerState::as_str)
    .collect();
    let stamp = match next {
        WorkerState::Stopping => ", stoppingAt = coalesce(stoppingAt, ?3)",
        WorkerState::Stopped | WorkerState::Dead => ", stoppedAt = ?3",
        _ => "",
    };
    let marks = from
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE Worker SET state = ?2, heartbeatAt = max(heartbeatAt, ?3){stamp} \
         WHERE id = ?1 AND state IN ({marks})"
    );
    tx.execute(&sql, params![id, next.as_str(), now])
        .map(|n| n == 1)
        .map_err(Error::db("change worker state"))
}

/// Records a heartbeat, and the writer's work so far; false when the
/// worker is no longer active.
pub fn heartbeat(conn: &Connection, id: i64, now: &str, load: &WriterLoad) -> Result<bool> {
    conn.prepare_cached(
        "UPDATE Worker SET heartbeatAt = ?2, writerBusyUs = ?3, writerCommits = ?4, \
         writerCommitUs = ?5, writerLockWaitUs = ?6, writerSyncUs = ?7 \
         WHERE id = ?1 AND state IN ('STARTING', 'RUNNING', 'STOPPING')",
    )
    .and_then(|mut s| {
        let [busy, commits, commit, lock, sync] = load_values(load);
        s.execute(params![id, now, busy, commits, commit, lock, sync])
    })
    .map(|n| n == 1)
    .map_err(Error::db("record heartbeat"))
}

/// Records the writer's totals on worker `id`'s row, whatever its state.
pub fn record_load(tx: &Transaction<'_>, id: i64, load: &WriterLoad) -> Result<()> {
    let [busy, commits, commit, lock, sync] = load_values(load);
    tx.execute(
        "UPDATE Worker SET writerBusyUs = ?2, writerCommits = ?3, writerCommitUs = ?4, \
         writerLockWaitUs = ?5, writerSyncUs = ?6 WHERE id = ?1",
        params![id, busy, commits, commit, lock, sync],
    )
    .map(drop)
    .map_err(Error::db("record writer load"))
}

/// The writer's totals in the order of the `writer*` columns.
fn load_values(l: &WriterLoad) -> [i64; 5] {
    [l.busy_us, l.commits, l.commit_us, l.lock_wait_us, l.sync_us]
}

/// Writes a stop request on the active worker; returns it, or None when no
/// worker is active.
pub fn request_stop(tx: &Transaction<'_>, now: &str) -> Result<Option<WorkerRow>> {
    tx.execute(
        "UPDATE Worker SET stopRequestedAt = coalesce(stopRequestedAt, ?1) \
         WHERE state IN ('STARTING', 'RUNNING', 'STOPPING')",
        [now],
    )
    .map_err(Error::db("request worker stop"))?;
    active_worker(tx)
}

/// Active workers whose heartbeat is older than `stale_before`: a plain
/// read, so that a periodic check with nothing to change takes no lock.
pub fn stale_workers(conn: &Connection, stale_before: &str) -> Result<Vec<WorkerRow>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WORKER_COLUMNS} FROM Worker \
             WHERE state IN ('STARTING', 'RUNNING', 'STOPPING') AND heartbeatAt < ?1"
        ))
        .map_err(Error::db("find stale workers"))?;
    let rows = stmt
        .query_map([stale_before], worker_from_row)
        .map_err(Error::db("find stale workers"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("find stale workers"))
}

/// Marks worker `id` DEAD if it is still active and its heartbeat still
/// older than `stale_before` (it may have heartbeat since it was read as
/// stale); returns it when it was marked.
pub fn mark_dead_if_stale(
    tx: &Transaction<'_>,
    id: i64,
    stale_before: &str,
    now: &str,
) -> Result<Option<WorkerRow>> {
    tx.prepare_cached(&format!(
        "UPDATE Worker SET state = 'DEAD', stoppedAt = ?3 \
         WHERE id = ?1 AND state IN ('STARTING', 'RUNNING', 'STOPPING') AND heartbeatAt < ?2 \
         RETURNING {WORKER_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(params![id, stale_before, now], worker_from_row)
            .optional()
    })
    .map_err(Error::db("mark dead workers"))
}

/// Marks the active workers of process `pid` on `hostname` DEAD and
/// returns them: their supervisor saw that process exit.
pub fn mark_process_dead(
    tx: &Transaction<'_>,
    pid: i64,
    hostname: &str,
    now: &str,
) -> Result<Vec<WorkerRow>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "UPDATE Worker SET state = 'DEAD', stoppedAt = ?3 \
             WHERE state IN ('STARTING', 'RUNNING', 'STOPPING') AND pid = ?1 AND hostname = ?2 \
             RETURNING {WORKER_COLUMNS}"
        ))
        .map_err(Error::db("mark dead workers"))?;
    let rows = stmt
        .query_map(params![pid, hostname, now], worker_from_row)
        .map_err(Error::db("mark dead workers"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("mark dead workers"))
}

/// Marks every active worker DEAD and returns them: the caller holds the
/// lock file, which proves their processes are gone.
pub fn mark_all_dead(tx: &Transaction<'_>, now: &str) -> Result<Vec<WorkerRow>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "UPDATE Worker SET state = 'DEAD', stoppedAt = ?1 \
             WHERE state IN ('STARTING', 'RUNNING', 'STOPPING') \
             RETURNING {WORKER_COLUMNS}"
        ))
        .map_err(Error::db("mark dead workers"))?;
    let rows = stmt
        .query_map([now], worker_from_row)
        .map_err(Error::db("mark dead workers"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("mark dead workers"))
}
