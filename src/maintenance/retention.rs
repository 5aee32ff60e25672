//! `retention`: the worker's periodic removal of old history (on by
//! default, `[retention]` in `jobmgr.toml`). At worker start and then every
//! hour on the one clock it removes finished runs, with their log lines,
//! past `finished_days` (completed, cancelled) or `failed_days` (failed),
//! then the oldest finished runs beyond `max_runs` and while the data is
//! larger than `max_database_mb`, then audit rows older than the longer of
//! the two horizons, and returns the freed pages to the file system.
//!
//! How it stays out of the worker's way: it reads which runs to remove
//! first, then deletes them in short transactions of a few hundred runs
//! without waiting for an fsync ([`queries::open_unsynced`]) (a run's log lines in chunks of their own first), on a connection
//! of its own (as `prune-history` does, see `context/data.rs`), and after
//! each transaction it leaves the lock alone nine times as long as it held
//! it, so the writer, whose busy handler is polling for the lock, gets it,
//! and retention holds it at most a tenth of the time. With nothing to
//! remove it only reads, and writes its one-row report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::{Deserialize, Serialize};

use super::ticker::{Counts, Task, Tick};
use crate::clock::Timestamp;
use crate::config::{RETENTION_EVERY_MS, Retention};
use crate::error::{Error, Result};
use crate::store::retention::{self as queries, Finished, Pages};
use crate::store::{Connection, housekeeping};

/// Runs per delete transaction.
const RUNS_PER_BATCH: usize = 500;
/// Log lines per delete transaction (a command run may have 100,000).
const LINES_PER_BATCH: usize = 20_000;
/// Audit rows per delete transaction.
const AUDIT_PER_BATCH: usize = 2_000;
/// Pages returned to the file system per transaction (1 MiB at 4 KiB
/// pages: about as long a hold of the write lock as a delete batch).
const VACUUM_STEP: u64 = 256;
/// After each transaction retention waits this many times as long as it
/// held the lock, so it holds the lock (and takes the CPU it works with)
/// at most a tenth of the time...
const PAUSE_FACTOR: u32 = 9;
/// ...and at least this long (the writer's busy handler polls at growing
/// intervals; this covers its first several tries), at most this long.
const PAUSE_MIN: Duration = Duration::from_millis(20);
const PAUSE_MAX: Duration = Duration::from_secs(1);
const DAY_MS: i64 = 86_400_000;
/// Days of the charts' per-minute rollup kept: the week they show, and a
/// day more. Removed even when retention of runs is off: the rollup is
/// not history, only what the charts read.
pub const ROLLUP_DAYS: i64 = 8;
/// How soon a failed pass is tried again.
const RETRY_AFTER_MS: i64 = 300_000;

/// The name of the task and of its row in `Housekeeping`.
pub const NAME: &str = "retention";

/// What one retention run did, as stored and shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetentionReport {
    /// What it keeps.
    pub settings: Option<Retention>,
    /// When it ran, and when it runs next.
    pub ran_at: String,
    pub next_run_at: String,
    /// Runs that finished before these times were removed.
    pub finished_cutoff: String,
    pub failed_cutoff: String,
    pub runs_removed: u64,
    pub log_lines_removed: u64,
    pub audit_rows_removed: u64,
    /// Rows of the charts' per-minute rollup older than [`ROLLUP_DAYS`].
    pub rollup_rows_removed: u64,
    /// Of the runs: past their age, beyond `max_runs`, over `max_database_mb`.
    pub by_age: u64,
    pub by_max_runs: u64,
    pub by_max_database: u64,
    /// Delete transactions, and the longest one (the most the worker's
    /// writer waited for the lock because of retention).
    pub transactions: u64,
    pub longest_transaction_ms: u64,
    pub took_ms: u64,
    /// `none`, `full` or `incremental`: only an incremental file shrinks.
    pub auto_vacuum: String,
    pub pages_returned: u64,
    pub file_bytes: u64,
    /// Finished runs left.
    pub finished_runs: u64,
    /// Why it stopped early (the worker stopped, an error).
    pub stopped: Option<String>,
}

/// The retention task of one worker.
pub struct RetentionTask {
    db: PathBuf,
    conn: Option<Connection>,
    settings: Retention,
    worker_id: i64,
    stop: Receiver<()>,
    next_at: Option<Timestamp>,
}

impl RetentionTask {
    /// Retention on `db` with `settings`, for worker `worker_id`; it stops
    /// between two transactions when `stop` is dropped.
    pub fn new(db: PathBuf, settings: Retention, worker_id: i64, stop: Receiver<()>) -> Self {
        RetentionTask {
            db,
            conn: None,
            settings,
            worker_id,
            stop,
            next_at: None,
        }
    }
}

impl Task for RetentionTask {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&mut self, tick: &Tick) -> Result<Counts> {
        if self.next_at.is_some_and(|at| tick.now < at) {
            return Ok(Counts::new());
        }
        // A pass that fails (the disk, a lock held past the busy timeout)
        // is tried again a few minutes later, not an hour.
        self.next_at = Some(tick.now.plus_ms(RETRY_AFTER_MS));
        let next = tick.now.plus_ms(RETENTION_EVERY_MS);
        if self.conn.is_none() {
            self.conn = Some(queries::open_unsynced(&self.db)?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Counts::new());
        };
        let mut pass = Pass {
            conn,
            stop: &self.stop,
            report: RetentionReport {
                settings: Some(self.settings.clone()),
                ran_at: tick.now.to_text(),
                next_run_at: next.to_text(),
                ..RetentionReport::default()
            },
        };
        let started = Instant::now();
        let outcome = if self.settings.enabled {
            pass.remove(&self.settings, tick.now)
        } else {
            Ok(())
        }
        .and_then(|()| pass.remove_rollup(tick.now));
        let mut report = pass.report;
        if let Err(e) = &outcome {
            report.stopped = Some(e.to_string());
        }
        report.took_ms = started.elapsed().as_millis() as u64;
        let pages = queries::pages(conn)?;
        report.auto_vacuum = match pages.auto_vacuum {
            1 => "full",
            2 => "incremental",
            _ => "none",
        }
        .into();
        report.file_bytes = pages.pages * pages.page_size;
        report.finished_runs = queries::finished_count(conn)?;
        log_report(&report);
        let failed = outcome.as_ref().is_err_and(|e| !is_stop(e));
        if failed {
            report.next_run_at = tick.now.plus_ms(RETRY_AFTER_MS).to_text();
        }
        let text = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
        housekeeping::put(conn, NAME, self.worker_id, &tick.now.to_text(), &text)?;
        if !failed {
            self.next_at = Some(next);
        }
        match outcome {
            // A stop is not a failure: the next worker carries on.
            Err(e) if !is_stop(&e) => Err(e),
            _ => Ok(Counts::from([
                ("runsRemoved", report.runs_removed),
                ("logLinesRemoved", report.log_lines_removed),
                ("auditRowsRemoved", report.audit_rows_removed),
                ("rollupRowsRemoved", report.rollup_rows_removed),
            ])),
        }
    }
}

fn log_report(r: &RetentionReport) {
    match r.stopped.as_deref() {
        Some(STOPPING) => log::info!("retention: stopped early: {STOPPING}"),
        Some(why) => log::warn!("retention: stopped early: {why}"),
        None => {}
    }
    if r.runs_removed + r.audit_rows_removed > 0 {
        log::info!(
            "retention: removed {} runs ({} past their age, {} beyond max_runs, {} over \
             max_database_mb), {} log lines and {} audit rows in {} transactions (longest {} ms); \
             returned {} pages",
            r.runs_removed,
            r.by_age,
            r.by_max_runs,
            r.by_max_database,
            r.log_lines_removed,
            r.audit_rows_removed,
            r.transactions,
            r.longest_transaction_ms,
            r.pages_returned
        );
    } else {
        log::debug!("retention: nothing to remove");
    }
}

/// One run's work and what it has done so far.
struct Pass<'a> {
    conn: &'a mut Connection,
    stop: &'a Receiver<()>,
    report: RetentionReport,
}

/// Why a pass ended early when the worker stopped: not a failure.
const STOPPING: &str = "the worker is stopping";

fn stopping() -> Error {
    Error::Conflict(STOPPING.into())
}

fn is_stop(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m == STOPPING)
}

impl Pass<'_> {
    fn remove(&mut self, s: &Retention, now: Timestamp) -> Result<()> {
        let done_cutoff = now.plus_ms(-(s.finished_days as i64) * DAY_MS).to_text();
        let failed_cutoff = now.plus_ms(-(s.failed_days as i64) * DAY_MS).to_text();
        self.report.finished_cutoff = done_cutoff.clone();
        self.report.failed_cutoff = failed_cutoff.clone();
        let aged = self.remove_runs(Finished::DoneBefore(&done_cutoff), u64::MAX)?
            + self.remove_runs(Finished::FailedBefore(&failed_cutoff), u64::MAX)?;
        self.report.by_age = aged;
        if let Some(max) = s.max_runs {
            let excess = queries::finished_count(self.conn)?.saturating_sub(max);
            if excess > 0 {
                self.report.by_max_runs = self.remove_runs(Finished::Oldest, excess)?;
            }
        }
        if let Some(mb) = s.max_database_mb {
            let limit = mb.saturating_mul(1024 * 1024);
            loop {
                let used = queries::pages(self.conn)?.used_bytes();
                let runs = queries::finished_count(self.conn)?;
                if used <= limit || runs == 0 {
                    break;
                }
                // As many of the oldest runs as the excess holds at the
                // average size of a run, so the data ends just under the
                // limit instead of a whole batch below it.
                let per_run = (used / runs).max(1);
                let want = (used - limit).div_ceil(per_run).min(RUNS_PER_BATCH as u64);
                let n = self.remove_runs(Finished::Oldest, want)?;
                if n == 0 {
                    break;
                }
                self.report.by_max_database += n;
            }
        }
        let audit_cutoff = if s.failed_days > s.finished_days {
            failed_cutoff
        } else {
            done_cutoff
        };
        while queries::has_audit_before(self.conn, &audit_cutoff)? {
            let n = self.timed("delete audit rows", |c| {
                queries::delete_audit_before(c, &audit_cutoff, AUDIT_PER_BATCH)
            })?;
            self.report.audit_rows_removed += n as u64;
        }
        self.vacuum()
    }

    /// Removes the charts' rollup rows older than [`ROLLUP_DAYS`] (a
    /// range delete per job type, at most an hour's rows each after the
    /// first pass).
    fn remove_rollup(&mut self, now: Timestamp) -> Result<()> {
        let minute = crate::store::minutes::minute_of(now.plus_ms(-ROLLUP_DAYS * DAY_MS));
        if !crate::store::minutes::has_before(self.conn, minute)? {
            return Ok(());
        }
        let n = self.timed("delete rollup rows", |c| {
            crate::store::minutes::delete_before(c, minute)
        })?;
        self.report.rollup_rows_removed = n as u64;
        Ok(())
    }

    /// Removes up to `most` runs of `which`, oldest first, in batches.
    fn remove_runs(&mut self, which: Finished<'_>, most: u64) -> Result<u64> {
        let mut removed = 0u64;
        let mut after = String::new();
        while removed < most {
            let want = (most - removed).min(RUNS_PER_BATCH as u64) as usize;
            let batch = queries::finished_runs(self.conn, which, &after, want)?;
            let Some((_, newest)) = batch.last() else {
                break;
            };
            after = newest.clone();
            let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
            loop {
                let n = self.timed("delete log lines", |c| {
                    queries::delete_logs_of(c, &ids, LINES_PER_BATCH)
                })?;
                self.report.log_lines_removed += n as u64;
                if n < LINES_PER_BATCH {
                    break;
                }
            }
            let (runs, lines) = self.timed("delete runs", |c| queries::delete_runs(c, &ids))?;
            self.report.log_lines_removed += lines as u64;
            self.report.runs_removed += runs as u64;
            removed += runs as u64;
            if runs == 0 || batch.len() < want {
                break;
            }
        }
        Ok(removed)
    }

    /// Returns every free page to the file system, in steps, when the file
    /// is in incremental mode; an older file (`none`) keeps its free pages
    /// for new rows, so it stops growing but does not shrink.
    fn vacuum(&mut self) -> Result<()> {
        let before = queries::pages(self.conn)?;
        if before.auto_vacuum != 2 || before.free == 0 {
            return Ok(());
        }
        let mut left = before;
        while left.free > 0 {
            let step = left.free.min(VACUUM_STEP);
            self.timed("vacuum", |c| queries::incremental_vacuum(c, step))?;
            let now: Pages = queries::pages(self.conn)?;
            if now.free >= left.free {
                break;
            }
            left = now;
        }
        self.report.pages_returned = before.free.saturating_sub(left.free);
        queries::checkpoint_passive(self.conn)
    }

    /// Runs one write transaction, records how long it held the lock, then
    /// leaves the lock to the writer [`PAUSE_FACTOR`] times as long, or
    /// ends the pass when the worker stops.
    fn timed<T>(&mut self, what: &str, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let out = f(self.conn)?;
        let took = started.elapsed();
        log::debug!(
            "retention: {what} held the write lock {} ms",
            took.as_millis()
        );
        self.report.transactions += 1;
        self.report.longest_transaction_ms = self
            .report
            .longest_transaction_ms
            .max(took.as_millis() as u64);
        match self
            .stop
            .recv_timeout((took * PAUSE_FACTOR).clamp(PAUSE_MIN, PAUSE_MAX))
        {
            Err(RecvTimeoutError::Timeout) => Ok(out),
            _ => Err(stopping()),
        }
    }
}
