//! RUNNING runs whose worker is gone ("orphans"), and how recovery
//! resolves them: failed, cancelled (their cancel was asked for), or put
//! back in the queue when their type is safe to retry. Every statement is
//! fenced on the worker the run was claimed by.

use rusqlite::{Connection, Transaction, params};

use super::runs::requeue;
use crate::error::{Error, Result};
use crate::job::JobStatus;

/// A RUNNING run whose worker is gone.
#[derive(Debug, Clone)]
pub struct OrphanRun {
    pub id: i64,
    pub job_name: String,
    pub worker_id: Option<i64>,
    pub cancel_requested: bool,
    /// The process group of a command job's program, if one was recorded.
    pub pgid: Option<i64>,
}

const ACTIVE_STATES_SQL: &str = "('STARTING', 'RUNNING', 'STOPPING')";

/// RUNNING runs whose worker is not active, or is active with a heartbeat
/// older than `stale_before` (those workers are about to be declared dead).
pub fn orphan_runs(conn: &Connection, stale_before: &str) -> Result<Vec<OrphanRun>> {
    let sql = format!(
        "SELECT r.id, r.jobName, r.workerId, r.cancelRequestedAt IS NOT NULL, \
         json_extract(r.metadata, '$.pgid') FROM JobRun r \
         LEFT JOIN Worker w ON w.id = r.workerId \
         WHERE r.status = 'RUNNING' AND (w.id IS NULL OR w.state NOT IN {ACTIVE_STATES_SQL} \
         OR w.heartbeatAt < ?1) ORDER BY r.id"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map([stale_before], |r| {
                Ok(OrphanRun {
                    id: r.get(0)?,
                    job_name: r.get(1)?,
                    worker_id: r.get(2)?,
                    cancel_requested: r.get(3)?,
                    pgid: r.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(Error::db("find orphaned runs"))
}

/// Marks an orphaned run FAILED with `error`; fenced on its worker.
pub fn fail_orphan(tx: &Transaction<'_>, run: &OrphanRun, error: &str, now: &str) -> Result<bool> {
    finish_orphan(tx, run, JobStatus::Failed, error, now)
}

/// Marks an orphaned run whose cancel was requested CANCELLED.
pub fn cancel_orphan(
    tx: &Transaction<'_>,
    run: &OrphanRun,
    error: &str,
    now: &str,
) -> Result<bool> {
    finish_orphan(tx, run, JobStatus::Cancelled, error, now)
}

fn finish_orphan(
    tx: &Transaction<'_>,
    run: &OrphanRun,
    status: JobStatus,
    error: &str,
    now: &str,
) -> Result<bool> {
    tx.execute(
        "UPDATE JobRun SET status = ?2, finishedAt = ?3, updatedAt = ?3, error = ?4 \
         WHERE id = ?1 AND status = 'RUNNING' AND workerId IS ?5",
        params![run.id, status.as_str(), now, error, run.worker_id],
    )
    .map(|n| n == 1)
    .map_err(Error::db("resolve orphaned run"))
}

/// Puts an orphaned run of a retry-safe type back in the queue as a new attempt.
pub fn requeue_orphan(
    tx: &Transaction<'_>,
    run: &OrphanRun,
    note: &str,
    now: &str,
) -> Result<bool> {
    requeue(tx, run.id, run.worker_id, Some(note), now)
}

/// Whether `state` is one the one-active-worker index counts (kept beside
/// the SQL list above so the two cannot drift apart unnoticed).
#[cfg(test)]
pub fn is_active_state(state: crate::worker::WorkerState) -> bool {
    ACTIVE_STATES_SQL.contains(&format!("'{}'", state.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::WorkerState;

    #[test]
    fn active_state_list_matches_the_enum() {
        for s in [
            WorkerState::Starting,
            WorkerState::Running,
            WorkerState::Stopping,
            WorkerState::Stopped,
            WorkerState::Dead,
        ] {
            assert_eq!(is_active_state(s), s.is_active(), "{s}");
        }
    }
}
