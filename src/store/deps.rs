//! Dependencies between runs (`JobRunDependency`): a run enqueued after
//! others waits as WAITING; [`resolve_waiting`] queues it once all of them
//! COMPLETED, or cancels it, naming the run, once one of them failed or was
//! cancelled (and so on down a chain). The worker's writer runs it in its
//! group commit while any run waits, so a waiting run is queued and can be
//! claimed in the same transaction as the finish it waited for: for only
//! the runs that wait for the runs the commit ends ([`resolve_waiting_after`],
//! a probe of `JobRunDependency_on` per ended run), or for every waiting
//! run when another process may have ended one.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::runs::{NewRun, insert_runs};
use crate::error::{Error, Result};
use crate::job::JobStatus;

/// Inserts `run` WAITING for `after` (existing, unfinished or completed
/// runs: the caller checked); returns its id.
pub fn insert_waiting(tx: &Transaction<'_>, run: &NewRun, after: &[i64], now: &str) -> Result<i64> {
    let id = insert_runs(tx, std::slice::from_ref(run), now)?[0];
    tx.prepare_cached("UPDATE JobRun SET status = 'WAITING' WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(Error::db("enqueue waiting run"))?;
    let mut stmt = tx
        .prepare_cached("INSERT OR IGNORE INTO JobRunDependency (runId, dependsOn) VALUES (?1, ?2)")
        .map_err(Error::db("record dependency"))?;
    for dep in after {
        stmt.execute(params![id, dep])
            .map_err(Error::db("record dependency"))?;
    }
    Ok(id)
}

/// The status of run `id`, if it exists.
pub fn status_of(conn: &Connection, id: i64) -> Result<Option<JobStatus>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT status FROM JobRun WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(Error::db("read run status"))?;
    Ok(text.as_deref().and_then(JobStatus::parse))
}

/// How many runs wait (the counter the triggers or the writer keep).
pub fn waiting_count(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT n FROM JobRunCount WHERE status = 'WAITING'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map(|n| n.unwrap_or(0))
        .map_err(Error::db("count waiting runs"))
}

const CANCEL_SQL: &str = "UPDATE JobRun SET status = 'CANCELLED', finishedAt = ?1, updatedAt = ?1, \
     error = (SELECT 'run ' || r.id || ' it waited for is ' || r.status FROM JobRunDependency d \
              JOIN JobRun r ON r.id = d.dependsOn WHERE d.runId = JobRun.id \
              AND r.status IN ('FAILED', 'CANCELLED') ORDER BY r.id LIMIT 1) \
     WHERE status = 'WAITING' AND EXISTS (SELECT 1 FROM JobRunDependency d \
              JOIN JobRun r ON r.id = d.dependsOn WHERE d.runId = JobRun.id \
              AND r.status IN ('FAILED', 'CANCELLED'))";

const QUEUE_SQL: &str = "UPDATE JobRun SET status = 'QUEUED', updatedAt = ?1 \
     WHERE status = 'WAITING' AND NOT EXISTS (SELECT 1 FROM JobRunDependency d \
              JOIN JobRun r ON r.id = d.dependsOn WHERE d.runId = JobRun.id \
              AND r.status <> 'COMPLETED')";

/// Restricts an update of WAITING runs to those waiting for the runs in
/// the JSON array `?2`.
const AFTER: &str = " AND id IN (SELECT d.runId FROM JobRunDependency d \
     WHERE d.dependsOn IN (SELECT value FROM json_each(?2)))";

/// The two statements of [`resolve_waiting_after`], made once.
static CANCEL_AFTER_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{CANCEL_SQL}{AFTER} RETURNING id, jobName"));
/// [`resolve_waiting`]'s cancel, naming the types it cancelled runs of.
static CANCEL_NAMED_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{CANCEL_SQL} RETURNING jobName"));
static QUEUE_AFTER_SQL: LazyLock<String> = LazyLock::new(|| format!("{QUEUE_SQL}{AFTER}"));

/// The runs a transaction ended, by outcome: only a completed run can let
/// a waiting run be queued, and only one that did not complete can cancel
/// one, so each statement of [`resolve_waiting_after`] reads its own list
/// and is skipped when that list is empty.
#[derive(Debug, Default)]
pub struct Ended {
    pub completed: Vec<i64>,
    pub not_completed: Vec<i64>,
}

/// [`resolve_waiting`] for only the runs waiting for the runs in `ended`
/// (runs this transaction finished) and, down a chain, for the runs that
/// cancels: the cost follows the runs that ended, not how many wait.
/// Returns how many were queued.
pub fn resolve_waiting_after(tx: &Transaction<'_>, now: &str, ended: &Ended) -> Result<usize> {
    let by_hand = super::counts::by_hand(tx)?;
    let (cancel, queue) = (&*CANCEL_AFTER_SQL, &*QUEUE_AFTER_SQL);
    let mut queued = 0;
    if !ended.completed.is_empty() {
        let list = serde_json::Value::from(ended.completed.as_slice()).to_string();
        queued = tx
            .prepare_cached(queue)
            .and_then(|mut s| s.execute(params![now, list]))
            .map_err(Error::db("queue waiting runs"))?;
        if by_hand && queued > 0 {
            super::counts::add_status(tx, JobStatus::Waiting, -(queued as i64))?;
        }
    }
    // The runs waiting for a cancelled one are cancelled in turn.
    let mut frontier = ended.not_completed.clone();
    while !frontier.is_empty() {
        let list = serde_json::Value::from(frontier).to_string();
        let cancelled: Vec<(i64, String)> = tx
            .prepare_cached(cancel)
            .and_then(|mut s| {
                s.query_map(params![now, list], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(Error::db("cancel waiting runs"))?;
        if by_hand && !cancelled.is_empty() {
            super::counts::add_status(tx, JobStatus::Waiting, -(cancelled.len() as i64))?;
            super::counts::add_finished(tx, JobStatus::Cancelled, cancelled.len())?;
            count_cancelled(tx, cancelled.iter().map(|(_, job)| job.as_str()), now)?;
        }
        frontier = cancelled.into_iter().map(|(id, _)| id).collect();
    }
    Ok(queued)
}

/// Queues the waiting runs whose runs all completed and cancels those one
/// of whose runs failed or was cancelled (again until a chain is done);
/// returns how many were queued.
pub fn resolve_waiting(tx: &Transaction<'_>, now: &str) -> Result<usize> {
    let by_hand = super::counts::by_hand(tx)?;
    loop {
        let names: Vec<String> = tx
            .prepare_cached(&CANCEL_NAMED_SQL)
            .and_then(|mut s| s.query_map([now], |r| r.get(0))?.collect())
            .map_err(Error::db("cancel waiting runs"))?;
        let n = names.len();
        if by_hand && n > 0 {
            super::counts::add_status(tx, JobStatus::Waiting, -(n as i64))?;
            super::counts::add_finished(tx, JobStatus::Cancelled, n)?;
            count_cancelled(tx, names.iter().map(String::as_str), now)?;
        }
        if n == 0 {
            break;
        }
    }
    let queued = tx
        .prepare_cached(QUEUE_SQL)
        .and_then(|mut s| s.execute([now]))
        .map_err(Error::db("queue waiting runs"))?;
    if by_hand && queued > 0 {
        super::counts::add_status(tx, JobStatus::Waiting, -(queued as i64))?;
    }
    Ok(queued)
}

/// Counts waiting runs cancelled (never started) in the metrics' and the
/// charts' rollups, on a connection with triggers off.
fn count_cancelled<'a>(
    tx: &Transaction<'_>,
    jobs: impl Iterator<Item = &'a str> + Clone,
    now: &str,
) -> Result<()> {
    let runs = jobs.map(|j| (j, "CANCELLED", None));
    super::stats::count_finished(tx, runs.clone(), now)?;
    super::minutes::count_finished(tx, runs, now)
}

/// A run named with its status, for "waits for" and "waited for by".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Linked {
    pub id: i64,
    #[serde(rename = "jobName")]
    pub job_name: String,
    pub status: String,
}

/// The runs `id` waits for, and the runs that wait for it.
pub fn links(conn: &Connection, id: i64) -> Result<(Vec<Linked>, Vec<Linked>)> {
    let read = |sql: &str| -> Result<Vec<Linked>> {
        conn.prepare_cached(sql)
            .and_then(|mut s| {
                s.query_map([id], |r| {
                    Ok(Linked {
                        id: r.get(0)?,
                        job_name: r.get(1)?,
                        status: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(Error::db("read dependencies"))
    };
    Ok((
        read(
            "SELECT r.id, r.jobName, r.status FROM JobRunDependency d JOIN JobRun r \
             ON r.id = d.dependsOn WHERE d.runId = ?1 ORDER BY r.id",
        )?,
        read(
            "SELECT r.id, r.jobName, r.status FROM JobRunDependency d JOIN JobRun r \
             ON r.id = d.runId WHERE d.dependsOn = ?1 ORDER BY r.id",
        )?,
    ))
}
