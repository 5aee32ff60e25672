//! Recovery of runs whose worker is gone: stale workers are declared dead
//! and their RUNNING runs are failed as "worker lost", or re-queued where
//! the job type is safe to retry. Used by `cleanup-stalled`, by a new worker
//! taking over the lock, and by the server's periodic sweep ([`sweep_every`]).
//!
//! A sweep reads first and writes only when it has something to change, in
//! one short transaction: a periodic task that took the write lock while
//! doing nothing would, if its process were paused (SIGSTOP) inside it,
//! stop the worker from writing at all.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::command;
use crate::error::Result;
use crate::job::JobStatus;
use crate::registry::Registry;
use crate::store::runs::{self, OrphanRun};
use crate::store::{Store, Transaction, workers};
use crate::worker::WorkerRow;

/// A run that recovery changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedRun {
    pub id: i64,
    pub job_name: String,
    pub status: JobStatus,
    pub error: String,
}

/// What one recovery pass did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub dead_workers: Vec<WorkerRow>,
    pub runs: Vec<ResolvedRun>,
}

/// Why the runs' worker is considered gone.
#[derive(Debug, Clone, Copy)]
pub enum Cause {
    /// Its heartbeat went silent.
    Stale,
    /// A new worker holds the lock file, so the old process has exited.
    TakenOver,
}

/// A cutoff no heartbeat is older than: nobody is stale.
const NOBODY_STALE: &str = "0000";

/// Records what a requested clean-up did, inside its transaction.
pub type RecordCleanup<'a> = &'a dyn Fn(&Transaction<'_>, &Recovery) -> Result<()>;

/// Declares workers silent for longer than `stale_after_ms` dead and
/// resolves every RUNNING run whose worker is gone; `record` writes the
/// audit row in the same transaction (alone when there was nothing to do).
pub fn cleanup_stalled(
    store: &Store,
    registry: &Registry,
    stale_after_ms: i64,
    record: RecordCleanup<'_>,
) -> Result<Recovery> {
    let now = Timestamp::now();
    let cutoff = now.plus_ms(-stale_after_ms).to_text();
    let done = sweep(store, registry, now, &cutoff, &|_| false, Some(record))?.0;
    Ok(done)
}

/// One pass: reads the stale workers and the orphaned runs (a plain read);
/// when there is something to change, declares the stale workers that
/// `spare` does not keep dead and resolves the runs of gone workers, in one
/// transaction. The same `cutoff` is used in both steps, and heartbeats
/// only move forward, so the write can only find less to do than the read
/// did. Returns what it did and the stale workers it spared.
fn sweep(
    store: &Store,
    registry: &Registry,
    now: Timestamp,
    cutoff: &str,
    spare: &dyn Fn(&WorkerRow) -> bool,
    record: Option<RecordCleanup<'_>>,
) -> Result<(Recovery, Vec<WorkerRow>)> {
    let (stale, orphans) = {
        let conn = store.conn()?;
        (
            workers::stale_workers(&conn, cutoff)?,
            runs::orphan_runs(&conn, cutoff)?,
        )
    };
    let (kept, dying): (Vec<WorkerRow>, Vec<WorkerRow>) = stale.into_iter().partition(spare);
    let spared: HashSet<i64> = kept.iter().map(|w| w.id).collect();
    let spared_run = |r: &OrphanRun| r.worker_id.is_some_and(|id| spared.contains(&id));
    if dying.is_empty() && orphans.iter().all(spared_run) {
        let nothing = Recovery::default();
        if let Some(record) = record {
            store.write("record audit entry", |tx| record(tx, &nothing))?;
        }
        return Ok((nothing, kept));
    }
    let recovery = store.write("clean up stalled runs", |tx| {
        let now_text = now.to_text();
        let mut dead = Vec::with_capacity(dying.len());
        for w in &dying {
            dead.extend(workers::mark_dead_if_stale(tx, w.id, cutoff, &now_text)?);
        }
        let recovery = resolve(tx, registry, dead, cutoff, Cause::Stale, now)?;
        if let Some(record) = record {
            record(tx, &recovery)?;
        }
        Ok(recovery)
    })?;
    Ok((recovery, kept))
}

/// What [`cleanup_stalled`] would change, without changing it.
pub fn preview_stalled(store: &Store, stale_after_ms: i64) -> Result<Vec<OrphanRun>> {
    let cutoff = Timestamp::now().plus_ms(-stale_after_ms).to_text();
    runs::orphan_runs(&*store.conn()?, &cutoff)
}

/// Inside a new worker's registration, with the lock file held: every
/// active worker row belongs to a process that is gone.
pub fn take_over(tx: &Transaction<'_>, registry: &Registry, now: Timestamp) -> Result<Recovery> {
    let dead = workers::mark_all_dead(tx, &now.to_text())?;
    // Every RUNNING run is now an orphan: its worker is not active.
    resolve(tx, registry, dead, NOBODY_STALE, Cause::TakenOver, now)
}

fn resolve(
    tx: &Transaction<'_>,
    registry: &Registry,
    dead: Vec<WorkerRow>,
    stale_before: &str,
    cause: Cause,
    now: Timestamp,
) -> Result<Recovery> {
    let now_text = now.to_text();
    let mut known: HashMap<i64, WorkerRow> = dead.iter().map(|w| (w.id, w.clone())).collect();
    let mut resolved = Vec::new();
    for run in runs::orphan_runs(tx, stale_before)? {
        let who = match run.worker_id {
            Some(id) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(id)
                    && let Some(w) = workers::get_worker(tx, id)?
                {
                    slot.insert(w);
                }
                // A worker still active was spared, or heartbeat after it
                // was read as stale (a wall clock stepped back): it owns
                // its runs.
                if known.get(&id).is_some_and(|w| w.state.is_active()) {
                    continue;
                }
                let just_declared = dead.iter().any(|w| w.id == id);
                describe(known.get(&id), id, cause, just_declared)
            }
            None => "no worker owns the run".to_string(),
        };
        let (status, error, changed) = if run.cancel_requested {
            let e = format!("cancelled: worker lost before it confirmed the cancel ({who})");
            (
                JobStatus::Cancelled,
                e.clone(),
                runs::cancel_orphan(tx, &run, &e, &now_text)?,
            )
        } else if registry.is_retry_safe(&run.job_name) {
            let e = format!("worker lost: {who}; re-queued");
            (
                JobStatus::Queued,
                e.clone(),
                runs::requeue_orphan(tx, &run, &e, &now_text)?,
            )
        } else {
            let e = format!("worker lost: {who}");
            (
                JobStatus::Failed,
                e.clone(),
                runs::fail_orphan(tx, &run, &e, &now_text)?,
            )
        };
        if changed {
            kill_left_behind(&run, run.worker_id.and_then(|id| known.get(&id)));
            resolved.push(ResolvedRun {
                id: run.id,
                job_name: run.job_name,
                status,
                error,
            });
        }
    }
    Ok(Recovery {
        dead_workers: dead,
        runs: resolved,
    })
}

/// A command job's program outlives its worker (it has its own process
/// group): kill the group recorded for the run, if it ran on this host.
fn kill_left_behind(run: &OrphanRun, worker: Option<&WorkerRow>) {
    let Some(pgid) = run.pgid else { return };
    if worker.is_some_and(|w| w.hostname != crate::worker::hostname()) {
        log::warn!(
            "run {}: its process group {pgid} is on another host; not killed",
            run.id
        );
        return;
    }
    if command::kill::kill_orphaned_group(pgid, run.id) {
        log::warn!(
            "run {}: killed process group {pgid} left by its worker",
            run.id
        );
    }
}

fn describe(w: Option<&WorkerRow>, id: i64, cause: Cause, just_declared: bool) -> String {
    let Some(w) = w else {
        return format!("worker {id} no longer exists");
    };
    let who = format!("worker {} (pid {} on {})", w.id, w.pid, w.hostname);
    match (cause, just_declared) {
        (_, false) => format!("{who} is {} but the run was still RUNNING", w.state),
        (Cause::Stale, true) => {
            format!("{who} stopped heartbeating (last at {})", w.heartbeat_at)
        }
        (Cause::TakenOver, true) => {
            format!("{who} exited without finishing the run (found by the next worker)")
        }
    }
}

/// How the server's periodic sweep runs.
#[derive(Debug, Clone, Copy)]
pub struct SweepTiming {
    pub every: Duration,
    pub stale_after: Duration,
}

/// A tick later than its interval by more than this means the process was
/// paused (SIGSTOP, a debugger) rather than slow.
const PAUSE_SLACK: Duration = Duration::from_secs(1);

/// The server's periodic task, until `stop` is dropped: every
/// `timing.every`, declare silent workers dead and resolve their runs, so
/// nobody has to press "clean up" after a crash. Two rules keep it from
/// declaring a live worker dead:
///
/// - `own_child` names the worker process this server started, if it is
///   alive (running or stopped). A stale worker row that is that process
///   is not dead: it is waited for, however long it stays silent.
/// - When the sweep itself was paused (its tick came far later than
///   planned), every heartbeat looks older than it is; for one stale-after
///   window after that, nobody is declared dead.
pub fn sweep_every(
    store: &Store,
    registry: &Registry,
    timing: SweepTiming,
    own_child: &dyn Fn() -> Option<u32>,
    stop: &Receiver<()>,
) {
    let host = crate::worker::hostname();
    let spare =
        |w: &WorkerRow| w.hostname == host && own_child().is_some_and(|p| i64::from(p) == w.pid);
    let mut pause = PauseWatch::new(timing, Instant::now());
    let mut waiting: HashSet<i64> = HashSet::new();
    loop {
        match stop.recv_timeout(timing.every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let now = Timestamp::now();
        let (paused, holding) = pause.tick(Instant::now());
        if let Some(p) = paused {
            log::warn!(
                "maintenance: this server was paused for about {:.1} s; workers get {:.1} s to \
                 heartbeat before any is declared dead",
                p.as_secs_f64(),
                timing.stale_after.as_secs_f64()
            );
        }
        let cutoff = if holding {
            NOBODY_STALE.to_string()
        } else {
            now.plus_ms(-(timing.stale_after.as_millis() as i64))
                .to_text()
        };
        match sweep(store, registry, now, &cutoff, &spare, None) {
            Ok((r, kept)) => {
                if !r.dead_workers.is_empty() || !r.runs.is_empty() {
                    log::warn!(
                        "maintenance: {} silent workers declared dead, {} runs resolved",
                        r.dead_workers.len(),
                        r.runs.len()
                    );
                }
                for w in kept.iter().filter(|w| !waiting.contains(&w.id)) {
                    log::warn!(
                        "maintenance: worker {} (pid {}, this server's child) is silent (last \
                         heartbeat {}) but its process is alive, perhaps stopped; waiting for it",
                        w.id,
                        w.pid,
                        w.heartbeat_at
                    );
                }
                waiting = kept.iter().map(|w| w.id).collect();
            }
            Err(e) => log::warn!("maintenance: {e}"),
        }
    }
}

/// Notices that the sweep's own process was paused, from the monotonic
/// clock (which runs on while a process is stopped).
struct PauseWatch {
    timing: SweepTiming,
    last: Instant,
    hold_until: Option<Instant>,
}

impl PauseWatch {
    fn new(timing: SweepTiming, now: Instant) -> PauseWatch {
        PauseWatch {
            timing,
            last: now,
            hold_until: None,
        }
    }

    /// One tick at `now`: the pause just noticed, if any, and whether
    /// nobody may be declared dead now. The gap is measured from the last
    /// tick's start, so a pause during a sweep is noticed too (a sweep that
    /// is merely slow, waiting for a lock, counts as one: holding back for
    /// one window is harmless).
    fn tick(&mut self, now: Instant) -> (Option<Duration>, bool) {
        let gap = now.saturating_duration_since(self.last);
        self.last = now;
        let late = gap.saturating_sub(self.timing.every);
        let paused = (late > PAUSE_SLACK).then_some(late);
        if paused.is_some() {
            self.hold_until = Some(now + self.timing.stale_after);
        }
        let holding = self.hold_until.is_some_and(|t| now < t);
        if !holding {
            self.hold_until = None;
        }
        (paused, holding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: SweepTiming = SweepTiming {
        every: Duration::from_millis(100),
        stale_after: Duration::from_secs(3),
    };

    #[test]
    fn ticks_on_time_hold_nobody_back() {
        let t0 = Instant::now();
        let mut w = PauseWatch::new(TIMING, t0);
        for i in 1..50 {
            let at = t0 + Duration::from_millis(105 * i);
            assert_eq!(w.tick(at), (None, false));
        }
    }

    #[test]
    fn a_pause_holds_everyone_back_for_one_stale_after_window() {
        let t0 = Instant::now();
        let mut w = PauseWatch::new(TIMING, t0);
        let resumed = t0 + Duration::from_secs(45);
        let (paused, holding) = w.tick(resumed);
        assert!(paused.is_some_and(|p| p > Duration::from_secs(44)));
        assert!(holding);
        let within = resumed + Duration::from_millis(2_900);
        assert_eq!(w.tick(within), (Some(Duration::from_millis(2_800)), true));
        // A second late tick restarts the window from itself.
        let mut w = PauseWatch::new(TIMING, t0);
        w.tick(resumed);
        let mut at = resumed;
        for _ in 0..29 {
            at += Duration::from_millis(100);
            assert_eq!(w.tick(at), (None, true));
        }
        at += Duration::from_millis(200);
        assert_eq!(w.tick(at), (None, false));
    }
}
