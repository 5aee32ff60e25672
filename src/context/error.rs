//! [`JobError`]: why a job did not complete, as a handler returns it (a
//! message, optional JSON context, and whether its type's retry policy may
//! try again).

use serde_json::Value;

/// Why a job did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    /// The job saw a cancellation request and stopped.
    Cancelled,
    /// The job failed; the message and context are recorded on the run.
    Failed {
        message: String,
        context: Option<Value>,
    },
    /// The job failed in a way worth trying again (a service that did not
    /// answer, a lock held elsewhere): a type whose policy retries runs
    /// tries it again even when it retries only such errors.
    Retry {
        message: String,
        context: Option<Value>,
    },
}

impl JobError {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> JobError {
        JobError::Failed {
            message: message.into(),
            context: None,
        }
    }

    /// A failure worth trying again (see [`JobError::Retry`]).
    pub fn retry(message: impl Into<String>) -> JobError {
        JobError::Retry {
            message: message.into(),
            context: None,
        }
    }

    /// Attaches a JSON context (recorded as `JobRun.errorContext`).
    pub fn with_context(self, context: Value) -> JobError {
        match self {
            JobError::Failed { message, .. } => JobError::Failed {
                message,
                context: Some(context),
            },
            JobError::Retry { message, .. } => JobError::Retry {
                message,
                context: Some(context),
            },
            other => other,
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Cancelled => f.write_str("cancelled"),
            JobError::Failed { message, .. } | JobError::Retry { message, .. } => {
                f.write_str(message)
            }
        }
    }
}

impl From<String> for JobError {
    fn from(s: String) -> Self {
        JobError::new(s)
    }
}

impl From<&str> for JobError {
    fn from(s: &str) -> Self {
        JobError::new(s)
    }
}

impl From<crate::error::Error> for JobError {
    fn from(e: crate::error::Error) -> Self {
        JobError::new(e.to_string())
    }
}

impl From<std::io::Error> for JobError {
    fn from(e: std::io::Error) -> Self {
        JobError::new(e.to_string())
    }
}
