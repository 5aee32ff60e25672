//! Domain types of the worker: its lifecycle state and the row that
//! describes it. STARTING → RUNNING → STOPPING → STOPPED, and any active
//! state → DEAD when its heartbeat goes silent or a new worker proves, by
//! holding the lock file, that the old process is gone.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;

/// Where the worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WorkerState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Dead,
}

impl WorkerState {
    /// The states the one-active-worker index counts.
    pub const ACTIVE: [WorkerState; 3] = [
        WorkerState::Starting,
        WorkerState::Running,
        WorkerState::Stopping,
    ];

    /// The text stored in `Worker.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "STARTING",
            WorkerState::Running => "RUNNING",
            WorkerState::Stopping => "STOPPING",
            WorkerState::Stopped => "STOPPED",
            WorkerState::Dead => "DEAD",
        }
    }

    /// Parses stored text.
    pub fn parse(text: &str) -> Option<WorkerState> {
        [
            WorkerState::Starting,
            WorkerState::Running,
            WorkerState::Stopping,
            WorkerState::Stopped,
            WorkerState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether a worker in this state holds the database.
    pub fn is_active(self) -> bool {
        WorkerState::ACTIVE.contains(&self)
    }

    /// The lifecycle: which moves are allowed.
    pub fn can_become(self, next: WorkerState) -> bool {
        use WorkerState::*;
        matches!(
            (self, next),
            (Starting, Running)
                | (Starting, Stopping)
                | (Running, Stopping)
                | (Starting | Running | Stopping, Stopped)
                | (Starting | Running | Stopping, Dead)
        )
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The worker as the status screens show it: a stored [`WorkerState`], or
/// one of the two views the screens add. Serialised as the one word the API
/// has always sent ("RUNNING", "STALE", "NONE").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerView {
    /// The worker's stored state, its heartbeat fresh or its state final.
    State(WorkerState),
    /// An active worker whose heartbeat is older than the stale-after
    /// window: hung, paused or gone, and about to be declared dead.
    Stale,
    /// No worker has ever registered.
    None,
}

impl WorkerView {
    /// What the screens show for `worker` (the active or latest one) at
    /// `now`.
    pub fn of(worker: Option<&WorkerRow>, now: Timestamp, stale_after_ms: i64) -> WorkerView {
        match worker {
            None => WorkerView::None,
            Some(w) if w.is_stale(now, stale_after_ms) => WorkerView::Stale,
            Some(w) => WorkerView::State(w.state),
        }
    }

    /// The word the API sends.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerView::State(s) => s.as_str(),
            WorkerView::Stale => "STALE",
            WorkerView::None => "NONE",
        }
    }

    /// A worker in an active state with a fresh heartbeat: one that must
    /// be stopped before another is started. A STALE worker is not: its
    /// replacement takes the lock and declares it dead.
    pub fn is_active(self) -> bool {
        matches!(self, WorkerView::State(s) if s.is_active())
    }
}

impl std::fmt::Display for WorkerView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WorkerView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One row of `Worker`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRow {
    pub id: i64,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub state: WorkerState,
    pub concurrency: i64,
    pub started_at: String,
    pub heartbeat_at: String,
    pub stop_requested_at: Option<String>,
    pub stopping_at: Option<String>,
    pub stopped_at: Option<String>,
    pub metadata: Map<String, Value>,
    /// Its writer thread's work so far, as of its last heartbeat.
    pub writer: WriterLoad,
}

/// Running totals of a worker's writer thread (microseconds), written with
/// each heartbeat. The writer commits everything its process changes: a
/// busy share near 1 says the single writer, not the jobs or the disk,
/// sets how many runs a second the worker finishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterLoad {
    /// Working rather than waiting for messages, its commits included.
    pub busy_us: i64,
    /// Transactions it committed.
    pub commits: i64,
    /// Inside those transactions, BEGIN to COMMIT.
    pub commit_us: i64,
    /// Of that, waiting for the write lock another connection held
    /// (BEGIN IMMEDIATE).
    pub lock_wait_us: i64,
    /// Of that, the COMMIT statement alone: the WAL frames written and
    /// synced.
    pub sync_us: i64,
}

/// How long one commit of the writer took, and its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitTimes {
    pub total_us: i64,
    pub lock_wait_us: i64,
    pub sync_us: i64,
}

impl CommitTimes {
    pub fn new(total: Duration, lock_wait: Duration, sync: Duration) -> CommitTimes {
        CommitTimes {
            total_us: micros(total),
            lock_wait_us: micros(lock_wait),
            sync_us: micros(sync),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl WriterLoad {
    /// Counts a stretch of work.
    pub fn add_busy(&mut self, d: Duration) {
        self.busy_us += micros(d);
    }

    /// Counts one more commit.
    pub fn add_commit(&mut self, t: CommitTimes) {
        self.commits += 1;
        self.commit_us += t.total_us;
        self.lock_wait_us += t.lock_wait_us;
        self.sync_us += t.sync_us;
    }
}

impl WorkerRow {
    /// Milliseconds since the last heartbeat.
    pub fn heartbeat_age_ms(&self, now: Timestamp) -> i64 {
        Timestamp::parse(&self.heartbeat_at)
            .map(|t| (now.0 - t.0).max(0))
            .unwrap_or(i64::MAX)
    }

    /// An active worker whose heartbeat is older than `stale_after_ms`.
    pub fn is_stale(&self, now: Timestamp, stale_after_ms: i64) -> bool {
        self.state.is_active() && self.heartbeat_age_ms(now) > stale_after_ms
    }

    /// "busy 25 % over 1 min 40 s, 50 commits/s, sync 40 %": the writer's
    /// share of the wall time from the start to the last heartbeat (or the
    /// stop), its commits a second, and the share of its busy time in
    /// COMMIT. None before the first heartbeat.
    pub fn writer_summary(&self) -> Option<String> {
        let start = Timestamp::parse(&self.started_at)?;
        let beat = Timestamp::parse(&self.heartbeat_at)?;
        let wall_ms = beat.0 - start.0;
        let w = &self.writer;
        if wall_ms <= 0 || w.commits == 0 {
            return None;
        }
        let wall_us = wall_ms as f64 * 1000.0;
        let sync = if w.busy_us > 0 {
            w.sync_us as f64 / w.busy_us as f64
        } else {
            0.0
        };
        Some(format!(
            "busy {:.0} % over {}, {:.0} commits/s, sync {:.0} %",
            w.busy_us as f64 / wall_us * 100.0,
            human_ms(wall_ms),
            w.commits as f64 / wall_us * 1e6,
            sync * 100.0
        ))
    }

    /// "worker 3 (pid 123 on host, heartbeat 2 s ago)".
    pub fn describe(&self, now: Timestamp) -> String {
        format!(
            "worker {} (pid {} on {}, {}, heartbeat {} ago)",
            self.id,
            self.pid,
            self.hostname,
            self.state,
            human_ms(self.heartbeat_age_ms(now))
        )
    }
}

/// 1500 → "1.5 s", 125000 → "2 min 5 s".
pub fn human_ms(ms: i64) -> String {
    if ms == i64::MAX {
        return "never".into();
    }
    if ms < 10_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s / 60) % 60),
    }
}

/// The version this binary reports: the git commit it was built from, or the
/// crate version when it was built outside git.
pub const VERSION: &str = env!("JOBMGR_VERSION");

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_is_one_way() {
        use WorkerState::*;
        assert!(Running.can_become(Stopping));
        assert!(!Stopping.can_become(Running));
        assert!(!Stopped.can_become(Running));
        assert!(Stopping.can_become(Dead));
        assert!(!Dead.is_active());
    }

    fn row(state: WorkerState, heartbeat_at: &str) -> WorkerRow {
        WorkerRow {
            id: 1,
            hostname: "h".into(),
            pid: 1,
            version: VERSION.into(),
            state,
            concurrency: 1,
            started_at: heartbeat_at.into(),
            heartbeat_at: heartbeat_at.into(),
            stop_requested_at: None,
            stopping_at: None,
            stopped_at: None,
            metadata: Map::new(),
            writer: WriterLoad::default(),
        }
    }

    #[test]
    fn the_view_adds_stale_and_none_to_the_stored_states() {
        use WorkerState::*;
        let now = Timestamp::now();
        let fresh = now.to_text();
        let old = now.plus_ms(-10_000).to_text();
        let view = |w: Option<&WorkerRow>| WorkerView::of(w, now, 5_000);
        assert_eq!(view(None), WorkerView::None);
        assert_eq!(
            view(Some(&row(Running, &fresh))),
            WorkerView::State(Running)
        );
        assert_eq!(view(Some(&row(Running, &old))), WorkerView::Stale);
        assert_eq!(view(Some(&row(Stopping, &old))), WorkerView::Stale);
        // A final state is never stale: its heartbeat has simply stopped.
        assert_eq!(view(Some(&row(Stopped, &old))), WorkerView::State(Stopped));
        assert!(WorkerView::State(Starting).is_active());
        assert!(!WorkerView::Stale.is_active());
        assert!(!WorkerView::State(Dead).is_active());
        let words: Vec<String> = [
            WorkerView::Stale,
            WorkerView::None,
            WorkerView::State(Running),
        ]
        .iter()
        .map(|v| serde_json::to_string(v).unwrap_or_default())
        .collect();
        assert_eq!(words, [r#""STALE""#, r#""NONE""#, r#""RUNNING""#]);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_ms(1500), "1.5 s");
        assert_eq!(human_ms(125_000), "2 min 5 s");
    }
}
