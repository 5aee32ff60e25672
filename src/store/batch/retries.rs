//! Recording a failed attempt that its type tries again: the attempt is
//! copied to `JobRunAttempt`, and the run waits as SCHEDULED for its
//! backoff with the next attempt number, so the due-run machinery
//! (`store::due`) queues it when its time comes. Fenced like every write
//! of the worker: only a run still RUNNING under this worker changes.

use rusqlite::{Transaction, params};

use super::{Claimant, Ownership, RetryRecord};
use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::store::counts;

/// Copies the failed attempt into the history, fenced like the update.
const KEEP_ATTEMPT_SQL: &str = "INSERT INTO JobRunAttempt (jobRunId, attempt, startedAt, \
     finishedAt, error, errorContext, entitiesProcessed, outcomeSummary, retryAt) \
     SELECT id, attempt, startedAt, ?3, ?4, ?5, ?6, ?7, ?8 FROM JobRun \
     WHERE id = ?1 AND workerId = ?2 AND status = 'RUNNING'";

/// The run waits for its next attempt. Its last error stays on the row,
/// so the history shows why it waits; the next finish replaces it.
const WAIT_SQL: &str = "UPDATE JobRun SET status = 'SCHEDULED', runAt = ?3, \
     attempt = attempt + 1, workerId = NULL, startedAt = NULL, currentStage = NULL, \
     entitiesProcessed = 0, entitiesTotal = NULL, entitiesUnit = NULL, outcomeSummary = '{}', \
     error = ?4, errorContext = ?5, cancelRequestedAt = NULL, updatedAt = ?6, \
     metadata = json_set(metadata, '$.maxAttempts', ?7) \
     WHERE id = ?1 AND workerId = ?2 AND status = 'RUNNING'";

/// Puts one failed attempt aside and schedules the next.
pub(super) fn write_retry(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    r: &RetryRecord,
    now: &str,
) -> Result<()> {
    let f = &r.finish;
    let id = f.progress.run_id;
    let at = r.run_at.to_text();
    let kept = tx
        .prepare_cached(KEEP_ATTEMPT_SQL)
        .and_then(|mut s| {
            s.execute(params![
                id,
                me.worker_id,
                now,
                f.error,
                f.error_context,
                f.progress.processed,
                f.progress.outcome,
                at
            ])
        })
        .map_err(Error::db("keep the failed attempt"))?;
    let moved = tx
        .prepare_cached(WAIT_SQL)
        .and_then(|mut s| {
            s.execute(params![
                id,
                me.worker_id,
                at,
                f.error,
                f.error_context,
                now,
                r.max_attempts
            ])
        })
        .map_err(Error::db("schedule the next attempt"))?;
    // Either way the run is no longer ours: later lines are refused.
    owned.0.insert(id, false);
    if kept == 0 || moved == 0 {
        owned.1.push(id);
    } else if counts::by_hand(tx)? {
        counts::add_status(tx, JobStatus::Scheduled, 1)?;
        crate::store::stats::count_retry(tx, &f.job_name)?;
    }
    Ok(())
}
