//! The writer's side of a type's retry policy: a failed attempt with
//! attempts left becomes a [`RetryRecord`] (the run waits as SCHEDULED for
//! its backoff), and the last one fails saying the retries are spent.

use crate::clock::Timestamp;
use crate::policies::{AfterFailure, Failure, gave_up};
use crate::registry::Registry;
use crate::store::batch::{FinishRecord, RetryRecord};

/// What the writer records for a run that ended.
pub(super) enum Ended {
    Finish(FinishRecord),
    Retry(RetryRecord),
}

/// Applies `job_name`'s policy to a failed attempt `attempt` (the record
/// has status FAILED); `retryable` says the job returned `JobError::Retry`.
pub(super) fn after_failure(
    registry: &Registry,
    job_name: &str,
    attempt: i64,
    retryable: bool,
    mut rec: FinishRecord,
) -> Ended {
    let policy = registry.policy(job_name);
    if policy.retry.is_none() {
        return Ended::Finish(rec);
    }
    let failure = Failure {
        marked_retryable: retryable,
        exit_code: exit_code(rec.error_context.as_deref()),
    };
    // Spreads the jitter of runs that failed together.
    let seed = (rec.progress.run_id as u64) << 8 ^ attempt as u64;
    match policy.after_failure(attempt, failure, seed) {
        AfterFailure::Fail => Ended::Finish(rec),
        AfterFailure::GiveUp { attempts } => {
            let last = rec.error.as_deref().unwrap_or("failed");
            rec.error = Some(gave_up(attempts, last));
            Ended::Finish(rec)
        }
        AfterFailure::RetryIn(wait) => {
            let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            Ended::Retry(RetryRecord {
                finish: rec,
                run_at: Timestamp(Timestamp::now().0.saturating_add(ms)),
                max_attempts: policy.max_attempts(),
            })
        }
    }
}

/// A command's exit code, from the context its failure carries.
fn exit_code(context: Option<&str>) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(context?).ok()?;
    v.get("exitCode")?.as_i64()
}
