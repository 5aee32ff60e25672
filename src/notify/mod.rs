//! Notifications: the config file's `[[notify]]` entries ([`Notifier`]),
//! the events they name ([`Event`]), and what an event becomes in the
//! outbox ([`Fact`] → one `NotifyOutbox` row per notifier that wants it).
//!
//! Durable delivery, in two halves that never meet the writer's hot path:
//! an event is queued in the transaction that records it (recovery's
//! `run_stalled` and `worker_dead`, the disk guard's `disk_low`) or by the
//! worker's scan ([`scan`]: `run_failed`, `run_overdue`, `schedule_missed`,
//! found after the fact from the committed rows); the worker's delivery
//! thread ([`deliver`]) sends what is due, on a connection of its own, and
//! records each outcome in a short transaction. A row is marked delivered
//! only after the receiver said so, so delivery is at least once; every
//! attempt carries the row's id for the receiver to de-duplicate.

pub mod command;
pub mod deliver;
pub mod http;
pub mod resolve;
pub mod scan;
pub mod tls;

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::maintenance::Recovery;
use crate::registry::Registry;
use crate::store::Connection;
use crate::store::notify::{self as queries, NewRow};

/// Something a notifier can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run failed for good (retries exhausted included).
    RunFailed,
    /// A run still not finished `overdue_minutes` after it started, or
    /// after its schedule's due time.
    RunOverdue,
    /// A run recovered because its worker was lost.
    RunStalled,
    /// A worker declared dead.
    WorkerDead,
    /// Free disk space fell below the disk guard's threshold.
    DiskLow,
    /// A schedule's due time recorded as `SKIPPED_MISSED`.
    ScheduleMissed,
}

impl Event {
    /// Every event, in the order the README lists them.
    pub const ALL: [Event; 6] = [
        Event::RunFailed,
        Event::RunOverdue,
        Event::RunStalled,
        Event::WorkerDead,
        Event::DiskLow,
        Event::ScheduleMissed,
    ];

    /// The name used in the config file, the outbox and the payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::RunFailed => "run_failed",
            Event::RunOverdue => "run_overdue",
            Event::RunStalled => "run_stalled",
            Event::WorkerDead => "worker_dead",
            Event::DiskLow => "disk_low",
            Event::ScheduleMissed => "schedule_missed",
        }
    }

    /// The event named `name`.
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// Where an outbox row stands: PENDING until the receiver took it
/// (DELIVERED) or the attempts ran out (FAILED); both ends are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Failed => "FAILED",
        }
    }

    /// Parses stored or typed text, in any case; a typo is an invalid
    /// input error with a "did you mean".
    pub fn parse(text: &str) -> Result<DeliveryStatus> {
        let upper = text.trim().to_ascii_uppercase();
        DeliveryStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == upper)
            .ok_or_else(|| {
                let names = DeliveryStatus::ALL.map(DeliveryStatus::as_str);
                let mut m = format!("unknown delivery status '{text}'");
                match crate::error::suggest(&upper, names) {
                    Some(s) => m.push_str(&format!(" (did you mean '{s}'?)")),
                    None => m.push_str(&format!(" (expected one of: {})", names.join(", "))),
                }
                crate::error::Error::Invalid(m)
            })
    }
}

/// Where a notifier delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A JSON POST to an `http://` or `https://` URL.
    Webhook(http::Webhook),
    /// A program run with the event in its environment (argv, no shell).
    Command(command::NotifyCommand),
}

/// One `[[notify]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// Its name in the outbox (`name = ...`, else `notify-N`, N from 1).
    pub name: String,
    pub on: Vec<Event>,
    /// Only runs of these job types (None: every type). Events about no
    /// job (`worker_dead`, `disk_low`) are not filtered.
    pub jobs: Option<Vec<String>>,
    pub target: Target,
    /// `run_overdue`'s threshold.
    pub overdue: Duration,
    /// Where the admin page is reached from outside, for links to runs.
    pub public_url: Option<String>,
}

/// `overdue_minutes` when a notifier leaves it out.
pub const OVERDUE_MINUTES: u64 = 60;

impl Notifier {
    /// Whether this notifier wants `event` about a run of `job`.
    pub fn wants(&self, event: Event, job: Option<&str>) -> bool {
        if !self.on.contains(&event) {
            return false;
        }
        match (&self.jobs, job) {
            (Some(jobs), Some(job)) => jobs.iter().any(|j| j == job),
            _ => true,
        }
    }

    /// The admin page's link to run `id`, when `public_url` is set.
    pub fn run_link(&self, id: i64) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/admin/jobs#/runs/{id}"))
    }
}

/// What happened, before it is addressed to a notifier.
#[derive(Debug, Clone)]
pub struct Fact {
    pub event: Event,
    /// What the event is about ("run:12"): queued once per notifier.
    pub subject: String,
    pub run_id: Option<i64>,
    pub job: Option<String>,
    /// One line for people, without the link ("run 12 (feed) failed: ...").
    pub summary: String,
    /// The payload's event-specific fields (error, status, worker, ...).
    pub fields: Map<String, Value>,
}

impl Fact {
    /// A fact about run `id` of `job`.
    pub fn run(event: Event, id: i64, job: &str, summary: String) -> Fact {
        let mut fields = Map::new();
        fields.insert("runId".into(), id.into());
        fields.insert("job".into(), job.into());
        Fact {
            event,
            subject: format!("run:{id}"),
            run_id: Some(id),
            job: Some(job.to_string()),
            summary,
            fields,
        }
    }

    /// Adds a payload field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Fact {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// The outbox row of this fact for notifier `n`, due at `now`.
    pub fn row_for(&self, n: &Notifier, now: Timestamp) -> NewRow {
        NewRow {
            event: self.event.as_str(),
            subject: self.subject.clone(),
            notifier: n.name.clone(),
            run_id: self.run_id,
            job: self.job.clone(),
            payload: self.payload_for(n, now).to_string(),
            at: now.to_text(),
        }
    }

    /// The JSON body a receiver gets (the delivery id is added when sent):
    /// the event's fields, the link when `public_url` is set, and a
    /// Slack-compatible `text` (Slack's `<url|label>` link, and `&`, `<`,
    /// `>` escaped as Slack asks).
    fn payload_for(&self, n: &Notifier, now: Timestamp) -> Value {
        let link = self.run_id.and_then(|id| n.run_link(id));
        let host = crate::worker::hostname();
        let mut text = format!(
            "jobmgr on {}: {}",
            slack_escape(&host),
            slack_escape(&self.summary)
        );
        if let (Some(url), Some(id)) = (&link, self.run_id) {
            text.push_str(&format!(" <{url}|run {id}>"));
        }
        let mut body = Map::new();
        body.insert("event".into(), self.event.as_str().into());
        body.insert("subject".into(), self.subject.clone().into());
        body.insert("notifier".into(), n.name.clone().into());
        body.insert("at".into(), now.to_text().into());
        body.insert("host".into(), host.into());
        for (k, v) in &self.fields {
            body.insert(k.clone(), v.clone());
        }
        if let Some(url) = link {
            body.insert("url".into(), url.into());
        }
        body.insert("summary".into(), self.summary.clone().into());
        body.insert("text".into(), text.into());
        Value::Object(body)
    }
}

/// Escapes the three characters Slack's message format reserves.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Queues `facts` for every notifier that wants them, inside the caller's
/// transaction; a fact already queued for a notifier is left as it is.
/// Returns how many rows were added.
pub fn queue(
    conn: &Connection,
    notifiers: &[Notifier],
    facts: &[Fact],
    now: Timestamp,
) -> Result<usize> {
    let rows: Vec<NewRow> = facts
        .iter()
        .flat_map(|f| {
            notifiers
                .iter()
                .filter(|n| n.wants(f.event, f.job.as_deref()))
                .map(|n| f.row_for(n, now))
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    queries::insert(conn, &rows)
}

/// Inside a recovery's transaction: `worker_dead` for each worker it
/// declared dead, `run_stalled` for each run it resolved.
pub fn queue_recovery(
    conn: &Connection,
    registry: &Registry,
    recovery: &Recovery,
    now: Timestamp,
) -> Result<usize> {
    let notifiers = registry.notifiers();
    if notifiers.is_empty() {
        return Ok(0);
    }
    let mut facts = Vec::new();
    for w in &recovery.dead_workers {
        facts.push(Fact {
            event: Event::WorkerDead,
            subject: format!("worker:{}", w.id),
            run_id: None,
            job: None,
            summary: format!(
                "worker {} (pid {} on {}) is dead (last heartbeat {})",
                w.id, w.pid, w.hostname, w.heartbeat_at
            ),
            fields: json!({"worker": {"id": w.id, "pid": w.pid, "hostname": w.hostname,
                "heartbeatAt": w.heartbeat_at}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        });
    }
    for r in &recovery.runs {
        let summary = format!("run {} ({}) stalled: {}", r.id, r.job_name, r.error);
        facts.push(
            Fact::run(Event::RunStalled, r.id, &r.job_name, summary)
                .with("status", r.status.as_str())
                .with("error", r.error.clone()),
        );
    }
    queue(conn, notifiers, &facts, now)
}

/// The `disk_low` fact of a crossing below the threshold at `since`.
pub fn disk_low(free_bytes: u64, threshold_bytes: u64, since: &str, db: &str) -> Fact {
    let mb = |b: u64| b / (1024 * 1024);
    Fact {
        event: Event::DiskLow,
        subject: format!("disk:{since}"),
        run_id: None,
        job: None,
        summary: format!(
            "only {} MiB free beside {db} (warning below {} MiB)",
            mb(free_bytes),
            mb(threshold_bytes)
        ),
        fields: json!({"freeBytes": free_bytes, "thresholdBytes": threshold_bytes, "database": db})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
