//! Earlier attempts of retried runs (`JobRunAttempt`), and the two actions
//! on a run waiting for its next attempt: try it now, or give up.

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One earlier attempt of a run, as `show` and the API list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i64,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub error: Option<String>,
    pub error_context: Option<Value>,
    pub entities_processed: i64,
    pub outcome_summary: Value,
    /// When the next attempt was due, as decided when this one failed.
    pub retry_at: Option<String>,
}

/// The earlier attempts of run `id`, first first.
pub fn attempts(conn: &Connection, id: i64) -> Result<Vec<Attempt>> {
    let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    conn.prepare_cached(
        "SELECT attempt, startedAt, finishedAt, error, errorContext, entitiesProcessed, \
         outcomeSummary, retryAt FROM JobRunAttempt WHERE jobRunId = ?1 ORDER BY attempt",
    )
    .and_then(|mut s| {
        s.query_map([id], |r| {
            Ok(Attempt {
                attempt: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                error: r.get(3)?,
                error_context: json(r.get(4)?),
                entities_processed: r.get(5)?,
                outcome_summary: json(r.get(6)?).unwrap_or(Value::Object(Default::default())),
                retry_at: r.get(7)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("read attempts"))
}

/// A run waiting for its next attempt is due now; false when run `id` is
/// not waiting (SCHEDULED after a failed attempt).
pub fn retry_now(tx: &Transaction<'_>, id: i64, now: &str) -> Result<bool> {
    tx.prepare_cached(
        "UPDATE JobRun SET runAt = ?2, updatedAt = ?2 \
         WHERE id = ?1 AND status = 'SCHEDULED' AND attempt > 1",
    )
    .and_then(|mut s| s.execute(params![id, now]))
    .map(|n| n == 1)
    .map_err(Error::db("retry run now"))
}

/// A run waiting for its next attempt fails at once, its error saying the
/// retries were given up by hand; false when run `id` is not waiting.
pub fn give_up(tx: &Transaction<'_>, id: i64, now: &str) -> Result<bool> {
    tx.prepare_cached(
        "UPDATE JobRun SET status = 'FAILED', finishedAt = ?2, updatedAt = ?2, \
         error = 'gave up by hand after ' || (attempt - 1) || \
         iif(attempt = 2, ' attempt: ', ' attempts: ') || coalesce(error, 'failed') \
         WHERE id = ?1 AND status = 'SCHEDULED' AND attempt > 1",
    )
    .and_then(|mut s| s.execute(params![id, now]))
    .map(|n| n == 1)
    .map_err(Error::db("give up run"))
}

/// A RUNNING run of a lost worker whose type retries it: its attempt is
/// kept in `JobRunAttempt` with `error`, and it waits as SCHEDULED until
/// `at` for the next one. False when another process resolved it first.
pub fn retry_orphan(
    tx: &Transaction<'_>,
    run: &super::runs::OrphanRun,
    error: &str,
    at: &str,
    max_attempts: u32,
    now: &str,
) -> Result<bool> {
    let kept = tx
        .prepare_cached(
            "INSERT INTO JobRunAttempt (jobRunId, attempt, startedAt, finishedAt, error, \
             entitiesProcessed, outcomeSummary, retryAt) \
             SELECT id, attempt, startedAt, ?3, ?4, entitiesProcessed, outcomeSummary, ?5 \
             FROM JobRun WHERE id = ?1 AND status = 'RUNNING' AND workerId IS ?2",
        )
        .and_then(|mut s| s.execute(params![run.id, run.worker_id, now, error, at]))
        .map_err(Error::db("keep the lost attempt"))?;
    if kept == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE JobRun SET status = 'SCHEDULED', runAt = ?3, attempt = attempt + 1, \
         workerId = NULL, startedAt = NULL, currentStage = NULL, entitiesProcessed = 0, \
         entitiesTotal = NULL, entitiesUnit = NULL, outcomeSummary = '{}', error = ?4, \
         errorContext = NULL, cancelRequestedAt = NULL, updatedAt = ?5, \
         metadata = json_set(metadata, '$.maxAttempts', ?6) \
         WHERE id = ?1 AND status = 'RUNNING' AND workerId IS ?2",
    )
    .and_then(|mut s| s.execute(params![run.id, run.worker_id, at, error, now, max_attempts]))
    .map_err(Error::db("schedule the next attempt"))?;
    if super::counts::by_hand(tx)? {
        super::counts::add_status(tx, crate::job::JobStatus::Scheduled, 1)?;
        super::stats::count_retry(tx, &run.job_name)?;
    }
    Ok(true)
}

/// The attempt number run `id` is on (1 when there is no such run).
pub fn attempt_of(conn: &Connection, id: i64) -> Result<i64> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT attempt FROM JobRun WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map(|a| a.unwrap_or(1))
        .map_err(Error::db("read attempt"))
}
