//! What the history, log and statistics views ask for and show: the
//! filters the web API and the CLI build from their input (the store turns
//! them into SQL) and the view types the engine answers with. Domain
//! values, so that neither the web nor the CLI depends on the storage
//! layer.

use serde::Serialize;
use serde_json::{Map, Value};

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

/// Counts for the statistics overview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub by_status: Map<String, Value>,
    pub total: i64,
}

/// Runs finished per window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub last_minute: i64,
    pub last_hour: i64,
}

/// The statistics overview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub counts: Counts,
    pub throughput: Throughput,
    pub failed_last24h: i64,
}

/// One recorded admin action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub target: Option<String>,
    pub source: String,
    /// The OS user behind a CLI action.
    pub user: Option<String>,
    pub detail: Option<String>,
}

/// Failures of one job type with one error message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub job_name: String,
    pub error: Option<String>,
    pub count: i64,
    pub last_at: Option<String>,
    pub last_run_id: i64,
}

/// One entry of a run's stage timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageMark {
    pub stage: String,
    pub at: String,
}

/// A run in a re-run chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub id: i64,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
