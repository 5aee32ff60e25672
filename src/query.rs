//! What the history and log views ask for: the filters the web API and
//! the CLI build from their input and the store turns into SQL. They are
//! domain values, so that neither side depends on the storage layer.

use crate::job::{JobStatus, LogLevel};

/// What the history shows: newest first, keyset-paginated by id.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub statuses: Vec<JobStatus>,
    pub name: Option<String>,
    /// Text searched in the job name, parameters and error.
    pub q: Option<String>,
    /// Only runs created at or after this timestamp text.
    pub since: Option<String>,
    /// Only runs created before this timestamp text.
    pub until: Option<String>,
    /// Only runs with an id below this (the next page's cursor).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// Which lines of one run to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Lines at this level or more severe.
    pub min_level: Option<LogLevel>,
    /// Text searched in the message, case-insensitively for ASCII.
    pub q: Option<String>,
    /// Only lines after this line id.
    pub after_id: Option<i64>,
    pub limit: usize,
}
