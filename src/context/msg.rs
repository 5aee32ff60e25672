//! What executors, jobs and the signal thread tell the worker's writer
//! thread: the one channel into the process's only writer.

use std::time::Duration;

use super::JobWrite;
use crate::store::batch::{LogRecord, ProgressRecord};

/// What executors, jobs and the signal thread tell the writer.
#[derive(Debug)]
pub enum Msg {
    /// A log line from a job.
    Log(LogRecord),
    /// A run ended.
    Finished(Finished),
    /// A stage changed: write progress soon.
    Nudge,
    /// SIGTERM/SIGINT: begin stopping (a second one skips the drain).
    Stop,
    /// The WAL file changed: another connection may have committed.
    DbChanged,
    /// A command run's process group: written with the next commit.
    Pgid { run_id: i64, pgid: i64 },
    /// A job's write (media rows): applied at once on this connection.
    Apply(JobWrite),
}

/// How a run ended, as the executor saw it.
#[derive(Debug)]
pub struct Finished {
    pub run_id: i64,
    pub outcome: Outcome,
    pub progress: ProgressRecord,
    /// How long the handler ran; short runs let the writer claim ahead.
    pub took: Duration,
}

/// The handler's result.
#[derive(Debug)]
pub enum Outcome {
    Completed,
    Cancelled,
    Failed {
        message: String,
        context: Option<String>,
        /// The job returned [`crate::JobError::Retry`].
        retryable: bool,
    },
}
