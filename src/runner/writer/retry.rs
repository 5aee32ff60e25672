//! How the writer records a run that ended, and its side of a type's
//! retry policy: a failed attempt with attempts left becomes a
//! [`RetryRecord`] (the run waits as SCHEDULED for its backoff), and the
//! last one fails saying the retries are spent.

use super::{Finished, Outcome, Writer};
use crate::clock::Timestamp;
use crate::job::JobStatus;
use crate::policies::{AfterFailure, Failure, gave_up};
use crate::registry::Registry;
use crate::store::batch::{FinishRecord, RetryRecord};

/// What the writer records for a run that ended.
pub(super) enum Ended {
    Finish(FinishRecord),
    Retry(RetryRecord),
}

impl Writer {
    /// How a run that ended is recorded: its outcome, the stopping
    /// sequence's say, then its type's retry policy.
    pub(super) fn finish_record(&mut self, f: Finished) -> Option<Ended> {
        let flight = self.in_flight.remove(&f.run_id)?;
        self.last_log_ts.remove(&f.run_id);
        let (mut status, mut error, context, retryable) = match f.outcome {
            Outcome::Completed => (JobStatus::Completed, None, None, false),
            Outcome::Cancelled => (
                JobStatus::Cancelled,
                Some("cancelled while running".to_string()),
                None,
                false,
            ),
            Outcome::Failed {
                message,
                context,
                retryable,
            } => (JobStatus::Failed, Some(message), context, retryable),
        };
        if flight.interrupted && status != JobStatus::Completed {
            (status, error) = self.interrupted(&flight.job_name);
        }
        let rec = FinishRecord {
            progress: f.progress,
            status,
            error,
            error_context: context,
            job_name: flight.job_name,
            started: Some(flight.started),
        };
        if status != JobStatus::Failed {
            return Some(Ended::Finish(rec));
        }
        Some(after_failure(
            &self.registry,
            flight.attempt,
            retryable,
            rec,
        ))
    }
}

/// Applies `job_name`'s policy to a failed attempt `attempt` (the record
/// has status FAILED); `retryable` says the job returned `JobError::Retry`.
pub(super) fn after_failure(
    registry: &Registry,
    attempt: i64,
    retryable: bool,
    mut rec: FinishRecord,
) -> Ended {
    let policy = registry.policy(&rec.job_name);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::job::JobStatus;
    use crate::policies::{Backoff, Policy, Retry};
    use crate::store::batch::ProgressRecord;

    fn failed(error: &str, context: Option<&str>) -> FinishRecord {
        FinishRecord {
            progress: ProgressRecord {
                run_id: 7,
                stage: None,
                processed: 0,
                total: None,
                unit: None,
                outcome: "{}".into(),
            },
            status: JobStatus::Failed,
            error: Some(error.into()),
            error_context: context.map(str::to_string),
            job_name: String::new(),
            started: None,
        }
    }

    fn after(r: &Registry, name: &str, attempt: i64, retryable: bool, rec: FinishRecord) -> Ended {
        let rec = FinishRecord {
            job_name: name.into(),
            ..rec
        };
        after_failure(r, attempt, retryable, rec)
    }

    fn registry(any_error: bool, codes: Vec<i64>) -> Registry {
        let mut r = crate::jobs::builtin_registry();
        r.set_policy(
            "demo-known-total",
            Policy {
                retry: Some(Retry {
                    max_attempts: 3,
                    backoff: Backoff::Fixed,
                    initial: Duration::from_secs(5),
                    any_error,
                    on_exit_codes: codes,
                    ..Retry::default()
                }),
                ..Policy::default()
            },
        );
        r
    }

    fn retried(e: &Ended) -> bool {
        matches!(e, Ended::Retry(r) if r.max_attempts == 3)
    }

    #[test]
    fn a_rust_job_is_retried_only_for_job_error_retry_unless_any_error() {
        let r = registry(false, Vec::new());
        let name = "demo-known-total";
        assert!(retried(&after(&r, name, 1, true, failed("x", None))));
        assert!(!retried(&after(&r, name, 1, false, failed("x", None))));
        let r = registry(true, Vec::new());
        assert!(retried(&after(&r, name, 1, false, failed("x", None))));
        match after(&r, name, 3, false, failed("boom", None)) {
            Ended::Finish(f) => {
                assert_eq!(f.error.as_deref(), Some("gave up after 3 attempts: boom"))
            }
            Ended::Retry(_) => panic!("the third attempt is the last"),
        }
        // A type without a policy fails as before.
        let plain = after(&r, "demo-unknown-total", 1, true, failed("x", None));
        assert!(matches!(plain, Ended::Finish(f) if f.error.as_deref() == Some("x")));
    }

    #[test]
    fn exit_codes_come_from_the_failures_context() {
        let r = registry(true, vec![75]);
        let name = "demo-known-total";
        let ctx = |c: i64| format!("{{\"exitCode\": {c}, \"stderrTail\": []}}");
        assert!(retried(&after(
            &r,
            name,
            1,
            false,
            failed("x", Some(&ctx(75)))
        )));
        assert!(!retried(&after(
            &r,
            name,
            1,
            false,
            failed("x", Some(&ctx(1)))
        )));
    }
}
