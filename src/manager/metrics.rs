//! What `GET /metrics` reports, read in one snapshot: the rollups kept as
//! runs finish (never a scan of the history), the unfinished runs, the
//! worker's heartbeat, the files' sizes and retention's last pass; and
//! this process's own write path (its group commit and checkpoints), read
//! from its counters.

use std::path::Path;

use super::Manager;
use crate::checkpointer::{self, Checkpoints};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::maintenance::disk;
use crate::store::committer::{self, Rounds};
use crate::store::stats::{self, JobStatRow, Unfinished};
use crate::store::workers;
use crate::worker::{WorkerState, WriterLoad};

/// Everything one scrape shows, except what only the server knows (its
/// WebSocket clients).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub finished: Vec<JobStatRow>,
    /// (job, attempts tried again).
    pub retries: Vec<(String, i64)>,
    pub unfinished: Vec<Unfinished>,
    /// When the snapshot was taken, for the queue ages.
    pub now: Timestamp,
    pub log_lines: i64,
    /// (schedule, outcome, ledger rows).
    pub schedule_ticks: Vec<(String, String, i64)>,
    /// A worker is RUNNING with a fresh heartbeat.
    pub worker_up: bool,
    /// The active (or latest) worker's heartbeat age; None without one.
    pub heartbeat_age_ms: Option<i64>,
    /// That worker's writer thread, as of its last heartbeat.
    pub writer: Option<WriterLoad>,
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub disk_free_bytes: u64,
    /// Retention's last pass: when (ms since the epoch) and runs removed.
    pub retention: Option<(Timestamp, u64)>,
    /// This process's write path.
    pub writes: WritePath,
}

/// What this process's own counters say of its writes: those of another
/// process (a `jobmgr worker`, which `serve` runs as a child) live in that
/// process's memory and are not here.
#[derive(Debug, Clone, Copy, Default)]
pub struct WritePath {
    /// The enqueue group commit's rounds.
    pub commit: Rounds,
    /// The checkpoints of its checkpointer thread, and the committing
    /// threads' fallback ones.
    pub checkpointer: Checkpoints,
    pub fallback: Checkpoints,
}

impl WritePath {
    /// The counters as they stand.
    pub fn now() -> WritePath {
        let (checkpointer, fallback) = checkpointer::counts();
        WritePath {
            commit: committer::rounds(),
            checkpointer,
            fallback,
        }
    }
}

impl Manager {
    /// The metrics as they stand.
    pub fn metrics(&self) -> Result<Metrics> {
        let conn = self.store.conn()?;
        // One read snapshot for the counters, so the families agree.
        let (finished, retries, unfinished, log_lines, schedule_ticks, worker) =
            stats::in_snapshot(&conn, |c| {
                let worker = match workers::active_worker(c)? {
                    Some(w) => Some(w),
                    None => workers::latest_worker(c)?,
                };
                Ok((
                    stats::job_stats(c)?,
                    stats::retries(c)?,
                    stats::unfinished(c)?,
                    stats::counter(c, "log_lines")?,
                    stats::schedule_ticks(c)?,
                    worker,
                ))
            })?;
        drop(conn);
        let now = crate::clock::now();
        let heartbeat_age_ms = worker.as_ref().map(|w| w.heartbeat_age_ms(now));
        let writer = worker.as_ref().map(|w| w.writer);
        let worker_up = worker.as_ref().is_some_and(|w| {
            w.state == WorkerState::Running && w.heartbeat_age_ms(now) <= self.stale_after_ms
        });
        let path = self.store.path();
        let retention = self
            .housekeeping()
            .ok()
            .and_then(|h| h.retention)
            .and_then(|r| Timestamp::parse(&r.ran_at).map(|t| (t, r.runs_removed)));
        Ok(Metrics {
            finished,
            retries,
            unfinished,
            now,
            log_lines,
            schedule_ticks,
            worker_up,
            heartbeat_age_ms,
            writer,
            database_bytes: file_size(path),
            wal_bytes: file_size(&with_suffix(path, "-wal")),
            disk_free_bytes: disk::free_bytes(path)?,
            retention,
            writes: WritePath::now(),
        })
    }
}

/// A file's size; 0 when it is missing (no WAL right after a checkpoint
/// that truncated it, or before the first write).
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}
