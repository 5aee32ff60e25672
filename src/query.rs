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

/// Failures of one job type whose messages differ only in numbers and ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub job_name: String,
    /// The newest failure's message.
    pub error: Option<String>,
    /// What the group's messages share: numbers become `N`, long hex ids
    /// `X` (see [`error_key`]).
    pub pattern: Option<String>,
    /// Text to search the history with for this group's runs: the
    /// pattern's beginning up to its first masked part.
    pub search: Option<String>,
    pub count: i64,
    pub last_at: Option<String>,
    pub last_run_id: i64,
}

/// An error message with what varies between occurrences masked, so that
/// "worker lost: worker 3 (pid 4121 …, heartbeat 2 s ago)" and the same
/// from worker 4 fall into one group: every run of digits becomes `N` (so
/// times and dates do too), and a token of 8 or more hex characters with a
/// digit in it (a hash, an id) becomes `X`.
pub fn error_key(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for token in message.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let word_len = token
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .len();
        let (word, rest) = token.split_at(word_len);
        let hexlike = word.len() >= 8
            && word.chars().all(|c| c.is_ascii_hexdigit())
            && word.chars().any(|c| c.is_ascii_digit());
        if hexlike {
            out.push('X');
        } else {
            let mut in_digits = false;
            for c in word.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('N');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
        }
        out.push_str(rest);
    }
    out
}

/// The part of an [`error_key`] pattern before its first masked piece,
/// trimmed: what the history's text search finds its runs with (None when
/// too short to mean anything).
pub fn error_search(pattern: &str) -> Option<String> {
    let cut = pattern
        .char_indices()
        .find(|&(i, c)| {
            (c == 'N' || c == 'X')
                && !pattern[..i].ends_with(|p: char| p.is_ascii_alphanumeric())
                && !pattern[i + 1..].starts_with(|n: char| n.is_ascii_alphanumeric())
        })
        .map_or(pattern.len(), |(i, _)| i);
    let head = pattern[..cut]
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .trim();
    (head.chars().count() >= 4).then(|| head.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_times_and_ids_are_masked() {
        assert_eq!(
            error_key("worker lost: worker 3 (pid 4121 on vm, heartbeat 2026-12-01T10:00:01.123Z)"),
            "worker lost: worker N (pid N on vm, heartbeat N-N-NTN:N:N.NZ)"
        );
        assert_eq!(
            error_key("worker lost: worker 14 (pid 9 on vm, heartbeat 2026-11-30T23:59:59.999Z)"),
            error_key("worker lost: worker 3 (pid 4121 on vm, heartbeat 2026-12-01T10:00:01.123Z)")
        );
        assert_eq!(error_key("object 3f9a2c7e1b missing"), "object X missing");
        assert_eq!(error_key("deadbeef failed"), "deadbeef failed");
        assert_eq!(error_key("exited with code 75"), "exited with code N");
        assert_eq!(error_key("record3 bad"), "recordN bad");
        assert_eq!(error_key(""), "");
    }

    #[test]
    fn the_search_is_the_pattern_up_to_its_first_mask() {
        assert_eq!(
            error_search("worker lost: worker N (pid N)").as_deref(),
            Some("worker lost: worker")
        );
        assert_eq!(
            error_search("exited with code N").as_deref(),
            Some("exited with code")
        );
        assert_eq!(error_search("Nope N").as_deref(), Some("Nope"));
        assert_eq!(error_search("N records").as_deref(), None);
        assert_eq!(error_search("disk full").as_deref(), Some("disk full"));
    }
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

/// Where an audited action came from, as the Audit panel filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSource {
    /// The admin page (the session cookie).
    Page,
    /// The HTTP API with a bearer token.
    Api,
    /// The command line.
    Cli,
    /// The web server, in a row written before the page and the API were
    /// told apart.
    Web,
}

impl AuditSource {
    /// Parses a filter value; `web` is not one (it only names old rows).
    pub fn parse(text: &str) -> Option<AuditSource> {
        match text {
            "page" => Some(AuditSource::Page),
            "api" => Some(AuditSource::Api),
            "cli" => Some(AuditSource::Cli),
            _ => None,
        }
    }
}

/// Which audit rows to read: newest first, keyset-paginated by id.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An action (`run.cancel`), or a prefix of actions ending in `*`.
    pub action: Option<String>,
    pub source: Option<AuditSource>,
    /// The OS user of a CLI action.
    pub user: Option<String>,
    /// Actions on this run (`target` is `run N`).
    pub run_id: Option<i64>,
    /// At or after this timestamp text.
    pub since: Option<String>,
    /// Before this timestamp text.
    pub until: Option<String>,
    /// Only rows with an id below this (the next page's cursor).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// One audited admin action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub action: String,
    pub target: Option<String>,
    pub from: AuditSource,
    /// The client's address (none for the CLI).
    pub address: Option<String>,
    pub user: Option<String>,
    pub detail: Option<String>,
    /// The run the action was on, when its target is one.
    pub run_id: Option<i64>,
}
