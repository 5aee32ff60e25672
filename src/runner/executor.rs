//! Executor threads: take a claimed run, call its handler with a context,
//! turn the result (success, error, cancellation or panic) into an outcome,
//! and hand it to the writer with the final progress, whatever happened.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::context::{Finished, Msg, Outcome};
use crate::context::{JobContext, JobError, RunInfo, RunShared};
use crate::registry::Registry;
use crate::store::Store;
use crate::store::batch::ClaimedRun;

/// A claimed run handed to an executor.
#[derive(Debug)]
pub struct Assignment {
    pub run: ClaimedRun,
    pub shared: Arc<RunShared>,
}

/// Runs assignments until the channel closes.
pub fn executor_loop(
    rx: Receiver<Assignment>,
    tx: Sender<Msg>,
    registry: Arc<Registry>,
    store: Store,
) {
    for a in rx {
        let run_id = a.run.id;
        let started = Instant::now();
        let shared = a.shared.clone();
        let job_name = a.run.job_name.clone();
        let mut outcome = execute(a, &tx, &registry, &store);
        if shared.is_timed_out() {
            outcome = timed_out(&registry, &job_name, &outcome);
        }
        let finished = Finished {
            run_id,
            outcome,
            progress: shared.snapshot(),
            took: started.elapsed(),
        };
        if tx.send(Msg::Finished(finished)).is_err() {
            return;
        }
    }
}

/// A run that passed its type's timeout is recorded as timed out, whatever
/// its handler returned once it did return (it may have ignored the ask).
fn timed_out(registry: &Registry, job_name: &str, returned: &Outcome) -> Outcome {
    let secs = registry.policy(job_name).timeout.map_or(0, |t| t.as_secs());
    let returned = match returned {
        Outcome::Completed => "completed".to_string(),
        Outcome::Cancelled => "stopped".to_string(),
        Outcome::Failed { message, .. } => format!("failed: {message}"),
    };
    Outcome::Failed {
        message: format!("timed out after {secs} s (timeout_secs)"),
        context: Some(serde_json::json!({"timeoutSecs": secs, "returned": returned}).to_string()),
        retryable: false,
    }
}

fn execute(a: Assignment, tx: &Sender<Msg>, registry: &Registry, store: &Store) -> Outcome {
    let job_type = match registry.get(&a.run.job_name) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::Failed {
                message: format!("{e}: this worker does not know the job type"),
                context: None,
                retryable: false,
            };
        }
    };
    if a.shared.is_cancelled() {
        return Outcome::Cancelled;
    }
    let ctx = JobContext::new(
        RunInfo {
            id: a.run.id,
            job_name: a.run.job_name,
            attempt: a.run.attempt,
            parameters: serde_json::from_str(&a.run.parameters).unwrap_or_default(),
            worker_id: Some(a.run.worker_id),
        },
        a.shared,
        tx.clone(),
        store.clone(),
    );
    let handler = job_type.handler.clone();
    match catch_unwind(AssertUnwindSafe(|| handler(&ctx))) {
        Ok(Ok(())) => Outcome::Completed,
        Ok(Err(JobError::Cancelled)) => Outcome::Cancelled,
        Ok(Err(JobError::Failed { .. } | JobError::Retry { .. })) if ctx.is_cancelled() => {
            Outcome::Cancelled
        }
        Ok(Err(e @ (JobError::Failed { .. } | JobError::Retry { .. }))) => {
            let retryable = matches!(e, JobError::Retry { .. });
            let (JobError::Failed { message, context } | JobError::Retry { message, context }) = e
            else {
                return Outcome::Cancelled;
            };
            // The failure is in the log too, as an error line, so the log's
            // error filter (and `jobmgr logs ID --level error`) finds it.
            let mut line = serde_json::json!({"event": "failed"});
            if let Some(c) = &context {
                line["errorContext"] = c.clone();
            }
            ctx.log_with(
                crate::job::LogLevel::Error,
                &format!("failed: {message}"),
                line,
            );
            Outcome::Failed {
                message,
                context: context.map(|c| c.to_string()),
                retryable,
            }
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            ctx.log_with(
                crate::job::LogLevel::Error,
                &format!("job panicked: {text}"),
                serde_json::json!({"event": "panic"}),
            );
            Outcome::Failed {
                message: format!("panicked: {text}"),
                context: Some(serde_json::json!({"panic": text}).to_string()),
                retryable: false,
            }
        }
    }
}
