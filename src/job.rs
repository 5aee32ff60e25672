//! Domain types of a job run: its status and allowed transitions, log levels,
//! and the run record as jobmgr shows it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a run is in its life. [SCHEDULED →] QUEUED → RUNNING → COMPLETED |
/// FAILED | CANCELLED; a SCHEDULED run waits for its `runAt` and a run that
/// has not started may be cancelled directly, and a RUNNING run whose worker
/// was lost may go back to QUEUED when its type is safe to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    Scheduled,
    /// Waits for the runs it was enqueued after (`--after`).
    Waiting,
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Scheduled,
        JobStatus::Waiting,
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The text stored in `JobRun.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Scheduled => "SCHEDULED",
            JobStatus::Waiting => "WAITING",
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses stored or user-typed text, in any case.
    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// Whether the run has ended and will not change again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The lifecycle: every move a run may make, and the only ones. The
    /// store's statements are checked against this table by a test that
    /// runs each of them on a run in every status (`store::transitions`).
    pub const TRANSITIONS: [(JobStatus, JobStatus); 12] = [
        // Its runAt came (the worker queues due runs with its commits).
        (JobStatus::Scheduled, JobStatus::Queued),
        // Cancelled while it waited for its time.
        (JobStatus::Scheduled, JobStatus::Cancelled),
        // Claimed by a worker.
        (JobStatus::Queued, JobStatus::Running),
        // Cancelled before it started.
        (JobStatus::Queued, JobStatus::Cancelled),
        // Its job returned, or it was found lost and not safe to retry.
        (JobStatus::Running, JobStatus::Completed),
        (JobStatus::Running, JobStatus::Failed),
        // Its cancel was honoured (or its worker was lost after the ask).
        (JobStatus::Running, JobStatus::Cancelled),
        // Given back unstarted, asked to run again, or its worker was lost
        // and its type is safe to retry.
        (JobStatus::Running, JobStatus::Queued),
        // It failed and its type tries again after a backoff.
        (JobStatus::Running, JobStatus::Scheduled),
        // Its retries were given up by hand while it waited.
        (JobStatus::Scheduled, JobStatus::Failed),
        // Every run it waited for COMPLETED.
        (JobStatus::Waiting, JobStatus::Queued),
        // One it waited for failed or was cancelled, or it was cancelled.
        (JobStatus::Waiting, JobStatus::Cancelled),
    ];

    /// Whether [`JobStatus::TRANSITIONS`] allows moving to `next`.
    pub fn can_become(self, next: JobStatus) -> bool {
        JobStatus::TRANSITIONS.contains(&(self, next))
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a `JobLog` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
    ];

    /// The text stored in `JobLog.level`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }

    /// Parses a level; `warn` is accepted for `warning`.
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warning),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }
}

/// Who asked for a run (`JobRun.triggeredBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Cli,
    Api,
    Ui,
    Schedule,
    Rerun,
    Retry,
}

impl Trigger {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Api => "api",
            Trigger::Ui => "ui",
            Trigger::Schedule => "schedule",
            Trigger::Rerun => "rerun",
            Trigger::Retry => "retry",
        }
    }

    /// The trigger stored as `text`.
    pub fn parse(text: &str) -> Option<Trigger> {
        [
            Trigger::Cli,
            Trigger::Api,
            Trigger::Ui,
            Trigger::Schedule,
            Trigger::Rerun,
            Trigger::Retry,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

/// One row of `JobRun`, as shown by the CLI and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    pub id: i64,
    pub job_name: String,
    pub status: JobStatus,
    pub parameters: Map<String, Value>,
    pub priority: i64,
    pub attempt: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub worker_id: Option<i64>,
    pub current_stage: Option<String>,
    pub entities_processed: i64,
    pub entities_total: Option<i64>,
    pub entities_unit: Option<String>,
    pub outcome_summary: Map<String, Value>,
    pub error: Option<String>,
    pub error_context: Option<Value>,
    pub rerun_of_id: Option<i64>,
    pub triggered_by: String,
    pub metadata: Map<String, Value>,
    pub cancel_requested_at: Option<String>,
    pub updated_at: String,
    /// When a SCHEDULED run becomes due (kept once it was queued).
    pub run_at: Option<String>,
    /// The schedule that made the run, if one did.
    pub schedule_name: Option<String>,
    /// The due time it was made for (none for a schedule's "run now").
    pub scheduled_for: Option<String>,
}

impl JobRun {
    /// "Processing items (1,250 / 5,000) 25%" or "Scanning (1,250 processed)";
    /// "Queued" (or "Queued for attempt 2") before it starts, since a
    /// re-queued run still holds its last attempt's stage and counts.
    pub fn progress_text(&self) -> String {
        if self.status == JobStatus::Waiting {
            return "Waiting for other runs to complete".to_string();
        }
        if self.status == JobStatus::Scheduled && self.attempt > 1 {
            return self.retry_text(crate::clock::now());
        }
        if self.status == JobStatus::Scheduled {
            return match &self.run_at {
                Some(at) => format!("Scheduled for {at}"),
                None => "Scheduled".to_string(),
            };
        }
        if self.status == JobStatus::Queued {
            return match self.attempt {
                a if a > 1 => format!("Queued for attempt {a}"),
                _ => "Queued".to_string(),
            };
        }
        let stage = self.current_stage.as_deref().unwrap_or("Waiting");
        let done = group_thousands(self.entities_processed);
        match self.entities_total {
            Some(total) if total > 0 => {
                let unit = self
                    .entities_unit
                    .as_deref()
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default();
                let pct = (self.entities_processed as f64 * 100.0 / total as f64).min(100.0);
                format!(
                    "{stage}{unit} ({done} / {}) {pct:.0}%",
                    group_thousands(total)
                )
            }
            _ => format!("{stage} ({done} processed)"),
        }
    }
}

impl JobRun {
    /// "Attempt 2 of 5, next in 40 s" for a run waiting to be tried again.
    pub fn retry_text(&self, now: crate::clock::Timestamp) -> String {
        let of = self
            .metadata
            .get("maxAttempts")
            .and_then(Value::as_i64)
            .map(|m| format!(" of {m}"))
            .unwrap_or_default();
        let due = self
            .run_at
            .as_deref()
            .and_then(crate::clock::Timestamp::parse)
            .map(|at| (at.0 - now.0).max(0));
        let next = match due {
            Some(ms) if ms >= 1000 => format!("next in {}", seconds_text(ms / 1000)),
            Some(_) => "next due now".to_string(),
            None => "waiting".to_string(),
        };
        format!("Attempt {}{of}, {next}", self.attempt)
    }
}

/// 40 → "40 s", 150 → "2 min 30 s", 7200 → "2 h".
fn seconds_text(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 && s % 60 == 0 => format!("{} min", s / 60),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// One `JobLog` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub id: i64,
    pub job_run_id: i64,
    pub level: LogLevel,
    pub stage: Option<String>,
    pub message: String,
    pub context: Option<Value>,
    pub timestamp: String,
    /// The run's attempt that wrote it (1 unless the run was retried).
    pub attempt: i64,
}

impl LogLine {
    /// The line as one line of text (`logs` and the text export share it):
    /// `TIMESTAMP LEVEL [stage] message context`, continuation lines indented.
    pub fn to_text(&self) -> String {
        let stage = self
            .stage
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let ctx = self
            .context
            .as_ref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let msg = self.message.replace('\n', "\n    ");
        let attempt = match self.attempt {
            a if a > 1 => format!(" (attempt {a})"),
            _ => String::new(),
        };
        format!(
            "{} {:<7}{attempt}{stage} {msg}{ctx}",
            self.timestamp,
            self.level.as_str().to_uppercase()
        )
    }
}

/// 1234567 → "1,234,567".
pub fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_only_documented_moves() {
        use JobStatus::*;
        assert!(Queued.can_become(Running));
        assert!(Running.can_become(Completed));
        assert!(!Completed.can_become(Running));
        assert!(!Failed.can_become(Queued));
        assert!(!Queued.can_become(Completed));
        assert_eq!(JobStatus::parse("failed"), Some(Failed));
        assert_eq!(JobStatus::parse("nope"), None);
    }

    #[test]
    fn log_line_text_form() {
        let l = LogLine {
            id: 1,
            job_run_id: 2,
            level: LogLevel::Warning,
            stage: Some("Scan".into()),
            message: "a\nb".into(),
            context: Some(serde_json::json!({"k": 1})),
            timestamp: "2026-11-28T12:00:00.123Z".into(),
            attempt: 1,
        };
        assert_eq!(
            l.to_text(),
            "2026-11-28T12:00:00.123Z WARNING [Scan] a\n    b {\"k\":1}"
        );
    }

    #[test]
    fn groups_digits() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1250), "1,250");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(-5000), "-5,000");
    }
}
