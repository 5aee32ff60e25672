//! The job API: what a handler gets to report stage, totals, progress,
//! outcome counters and log lines, and to see cancellation.
//!
//! Progress increments are a relaxed atomic add: the writer thread reads the
//! counters on a short interval and writes them coalesced, so a job can call
//! [`JobContext::inc`] per item at no database cost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::job::LogLevel;
use crate::store::Store;
use crate::store::batch::{LogRecord, ProgressRecord};

mod data;
mod error;
mod msg;
pub(crate) use data::{JobWrite, database_companions};
pub use error::JobError;
// Public only because runner/writer.rs re-exports them with `pub use`.
pub use msg::{Finished, Msg, Outcome};

/// Stage, total and outcome: changed rarely, read by the writer.
#[derive(Debug, Default, Clone)]
struct Details {
    stage: Option<String>,
    total: Option<i64>,
    unit: Option<String>,
    outcome: BTreeMap<String, i64>,
}

/// The state a running job shares with the writer thread.
#[derive(Debug)]
pub(crate) struct RunShared {
    run_id: i64,
    processed: AtomicI64,
    /// Bumped on every change to `details`, so the writer can tell what moved.
    version: AtomicU64,
    details: Mutex<Details>,
    cancelled: AtomicBool,
    /// Set with the cancel when the run passed its type's timeout.
    timed_out: AtomicBool,
    cancel_lock: Mutex<bool>,
    cancel_cv: Condvar,
}

impl RunShared {
    /// Fresh state for a run.
    pub fn new(run_id: i64) -> Arc<RunShared> {
        Arc::new(RunShared {
            run_id,
            processed: AtomicI64::new(0),
            version: AtomicU64::new(0),
            details: Mutex::new(Details::default()),
            cancelled: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            cancel_lock: Mutex::new(false),
            cancel_cv: Condvar::new(),
        })
    }

    fn details(&self) -> MutexGuard<'_, Details> {
        // A job that panicked while holding the lock leaves plain data
        // behind; keep reporting it.
        self.details.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the job to stop; wakes a job sleeping in [`JobContext::sleep`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let mut flag = self.cancel_lock.lock().unwrap_or_else(|p| p.into_inner());
        *flag = true;
        self.cancel_cv.notify_all();
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// The run passed its timeout: the job is asked to stop like on a
    /// cancel, and whatever it returns is recorded as timed out.
    pub fn time_out(&self) {
        self.timed_out.store(true, Ordering::Release);
        self.cancel();
    }

    /// Whether the run passed its timeout.
    pub fn is_timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }

    /// A cheap fingerprint of the progress: changes whenever anything moved.
    pub fn fingerprint(&self) -> (i64, u64) {
        (
            self.processed.load(Ordering::Relaxed),
            self.version.load(Ordering::Acquire),
        )
    }

    /// The progress as it stands now.
    pub fn snapshot(&self) -> ProgressRecord {
        let d = self.details();
        ProgressRecord {
            run_id: self.run_id,
            stage: d.stage.clone(),
            processed: self.processed.load(Ordering::Relaxed),
            total: d.total,
            unit: d.unit.clone(),
            outcome: serde_json::to_string(&d.outcome).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// A run's identity as its handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub id: i64,
    pub job_name: String,
    pub attempt: i64,
    pub parameters: Map<String, Value>,
    /// The worker that claimed the run (fences writes made for the run).
    pub worker_id: Option<i64>,
}

/// What a handler gets: the JobLogger of the system jobmgr replaces.
pub struct JobContext {
    info: RunInfo,
    shared: Arc<RunShared>,
    tx: Sender<Msg>,
    /// Connections that refuse writes ([`Store::open_readers`]): what the
    /// narrow data methods in [`data`] read through. Never handed out.
    readers: Store,
}

impl JobContext {
    /// A context reporting to the writer behind `tx`, reading through
    /// `readers` (a pool opened with [`Store::open_readers`]).
    pub(crate) fn new(
        info: RunInfo,
        shared: Arc<RunShared>,
        tx: Sender<Msg>,
        readers: Store,
    ) -> Self {
        JobContext {
            info,
            shared,
            tx,
            readers,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> i64 {
        self.info.id
    }

    /// The job type's name.
    pub fn job_name(&self) -> &str {
        &self.info.job_name
    }

    /// 1 for the first attempt, more after a re-queue.
    pub fn attempt(&self) -> i64 {
        self.info.attempt
    }

    /// The worker that claimed the run.
    pub fn worker_id(&self) -> Option<i64> {
        self.info.worker_id
    }

    /// The validated parameters (defaults filled in).
    pub fn params(&self) -> &Map<String, Value> {
        &self.info.parameters
    }

    /// An integer parameter.
    pub fn param_i64(&self, name: &str) -> Result<i64, JobError> {
        self.info
            .parameters
            .get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| JobError::new(format!("parameter '{name}' is missing")))
    }

    /// An optional integer parameter.
    pub fn param_i64_opt(&self, name: &str) -> Option<i64> {
        self.info.parameters.get(name).and_then(Value::as_i64)
    }

    /// A string parameter.
    pub fn param_str(&self, name: &str) -> Result<&str, JobError> {
        self.info
            .parameters
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::new(format!("parameter '{name}' is missing")))
    }

    /// Enters a new stage: the counter restarts and the total becomes
    /// unknown until [`JobContext::set_total`]. Logged as a stage line.
    pub fn stage(&self, name: &str) {
        {
            let mut d = self.shared.details();
            d.stage = Some(name.to_string());
            d.total = None;
            d.unit = None;
            self.shared.processed.store(0, Ordering::Relaxed);
        }
        self.shared.version.fetch_add(1, Ordering::Release);
        self.log_with(
            LogLevel::Info,
            &format!("Stage: {name}"),
            serde_json::json!({"event": "stage", "stage": name}),
        );
        let _ = self.tx.try_send(Msg::Nudge);
    }

    /// Declares how many `unit`s the current stage will process.
    pub fn set_total(&self, total: i64, unit: &str) {
        {
            let mut d = self.shared.details();
            d.total = Some(total);
            d.unit = Some(unit.to_string()).filter(|u| !u.is_empty());
        }
        self.shared.version.fetch_add(1, Ordering::Release);
    }

    /// One more item processed.
    #[inline]
    pub fn inc(&self) {
        self.shared.processed.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` more items processed.
    #[inline]
    pub fn add(&self, n: i64) {
        self.shared.processed.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the processed count outright.
    pub fn set_progress(&self, n: i64) {
        self.shared.processed.store(n, Ordering::Relaxed);
    }

    /// Adds `n` to the outcome counter `key` (updates, inserts, deletes,
    /// errors, or any name).
    pub fn outcome(&self, key: &str, n: i64) {
        {
            let mut d = self.shared.details();
            match d.outcome.get_mut(key) {
                Some(v) => *v += n,
                None => {
                    d.outcome.insert(key.to_string(), n);
                }
            }
        }
        self.shared.version.fetch_add(1, Ordering::Release);
    }

    /// Writes a log line at `level`.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.send_log(level, message, None);
    }

    /// Writes a log line with a JSON context.
    pub fn log_with(&self, level: LogLevel, message: &str, context: Value) {
        self.send_log(level, message, Some(context.to_string()));
    }

    fn send_log(&self, level: LogLevel, message: &str, context: Option<String>) {
        let stage = self.shared.details().stage.clone();
        let record = LogRecord {
            run_id: self.info.id,
            level,
            stage,
            message: message.to_string(),
            context,
            timestamp: Timestamp::now(),
            attempt: self.info.attempt,
        };
        // Blocks when the writer is far behind: back-pressure that keeps
        // memory bounded instead of dropping lines.
        let _ = self.tx.send(Msg::Log(record));
    }

    /// A debug line.
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message);
    }

    /// An info line.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }

    /// A warning line.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warning, message);
    }

    /// An error line (the run goes on; return an error to fail it).
    pub fn error(&self, message: &str) {
        self.log(LogLevel::Error, message);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }

    /// Whether the run passed its type's timeout (`timeout_secs`); then
    /// [`JobContext::is_cancelled`] is true as well, so a job that stops on
    /// a cancel stops on a timeout too.
    pub fn is_timed_out(&self) -> bool {
        self.shared.is_timed_out()
    }

    /// `Err(JobError::Cancelled)` once cancellation was requested; use with `?`.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps up to `d`, returning early with `Err(Cancelled)` on a cancel.
    pub fn sleep(&self, d: Duration) -> Result<(), JobError> {
        let deadline = Instant::now() + d;
        let mut flag = self
            .shared
            .cancel_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while !*flag {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            flag = self
                .shared
                .cancel_cv
                .wait_timeout(flag, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Err(JobError::Cancelled)
    }
}
