//! The server's periodic tasks, in the order the ticker runs them. Each is
//! small and named; a new kind of periodic work (retention, the scheduler)
//! is one more [`Task`] in [`serve_tasks`], not a new thread.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::disk::DiskGuard;
use super::retention::RetentionTask;
use super::ticker::{Counts, Task, Tick};
use super::{NOBODY_STALE, Recovery, declare_stale, recover_orphans};
use crate::config::Retention;
use crate::error::Result;
use crate::job::JobStatus;
use crate::registry::Registry;
use crate::store::Store;
use crate::worker::WorkerRow;

/// Which worker process this server started, if it is alive (running or
/// stopped).
pub type OwnChild = Box<dyn Fn() -> Option<u32> + Send>;

/// The task list of `jobmgr serve`, in the order they run on each tick:
/// workers first, so the runs they leave are resolved on the same tick.
pub fn serve_tasks(
    store: &Store,
    registry: Arc<Registry>,
    stale_after_ms: i64,
    own_child: OwnChild,
) -> Vec<Box<dyn Task>> {
    vec![
        Box::new(StaleWorkers {
            store: store.clone(),
            registry: registry.clone(),
            stale_after_ms,
            own_child,
            host: crate::worker::hostname(),
            waiting: HashSet::new(),
        }),
        Box::new(StalledRuns {
            store: store.clone(),
            registry,
        }),
        // The scheduler goes here; retention runs in the worker
        // ([`worker_tasks`]), which always runs where serve may not.
    ]
}

/// The task list of the worker's housekeeping thread: the disk guard, then
/// retention (which stops between two transactions when `stop` is
/// dropped, as the ticker itself does).
pub fn worker_tasks(
    db: &Path,
    retention: &Retention,
    worker_id: i64,
    stop: Receiver<()>,
    notifiers: &[crate::notify::Notifier],
) -> Vec<Box<dyn Task>> {
    vec![
        Box::new(DiskGuard::new(
            db.to_path_buf(),
            retention.disk_free_min_mb,
            worker_id,
            notifiers.to_vec(),
        )),
        Box::new(RetentionTask::new(
            db.to_path_buf(),
            retention.clone(),
            worker_id,
            stop,
        )),
    ]
}

/// `stale-workers`: declares workers whose heartbeat went silent dead and
/// resolves their runs, so nobody has to press "clean up" after a crash.
/// Two rules keep it from declaring a live worker dead:
///
/// - A stale worker row that is this server's own child, alive, is not
///   dead: it is waited for, however long it stays silent.
/// - On a tick that holds (the server itself was just paused), every
///   heartbeat looks older than it is; nobody is declared dead.
pub struct StaleWorkers {
    store: Store,
    registry: Arc<Registry>,
    stale_after_ms: i64,
    own_child: OwnChild,
    host: String,
    /// The spared workers already logged as waited for.
    waiting: HashSet<i64>,
}

impl Task for StaleWorkers {
    fn name(&self) -> &'static str {
        "stale-workers"
    }

    fn run(&mut self, tick: &Tick) -> Result<Counts> {
        let cutoff = if tick.hold {
            NOBODY_STALE.to_string()
        } else {
            tick.now.plus_ms(-self.stale_after_ms).to_text()
        };
        let child = (self.own_child)();
        let host = &self.host;
        let spare =
            |w: &WorkerRow| &w.hostname == host && child.is_some_and(|p| i64::from(p) == w.pid);
        let (r, kept) = declare_stale(&self.store, &self.registry, tick.now, &cutoff, &spare)?;
        for w in kept.iter().filter(|w| !self.waiting.contains(&w.id)) {
            log::warn!(
                "maintenance: worker {} (pid {}, this server's child) is silent (last heartbeat \
                 {}) but its process is alive, perhaps stopped; waiting for it",
                w.id,
                w.pid,
                w.heartbeat_at
            );
        }
        self.waiting = kept.iter().map(|w| w.id).collect();
        if !r.dead_workers.is_empty() {
            log::warn!(
                "maintenance: {} silent workers declared dead, {} runs resolved",
                r.dead_workers.len(),
                r.runs.len()
            );
        }
        let mut counts = run_counts(&r);
        if !r.dead_workers.is_empty() {
            counts.insert("workersDeclaredDead", r.dead_workers.len() as u64);
        }
        Ok(counts)
    }
}

/// `stalled-runs`: RUNNING runs whose worker is no longer active (it
/// stopped or died without finishing them) are failed, re-queued or
/// cancelled.
pub struct StalledRuns {
    store: Store,
    registry: Arc<Registry>,
}

impl Task for StalledRuns {
    fn name(&self) -> &'static str {
        "stalled-runs"
    }

    fn run(&mut self, tick: &Tick) -> Result<Counts> {
        let r = recover_orphans(&self.store, &self.registry, tick.now)?;
        if !r.runs.is_empty() {
            log::warn!(
                "maintenance: {} runs of workers that are gone resolved",
                r.runs.len()
            );
        }
        Ok(run_counts(&r))
    }
}

/// The runs a recovery resolved, by the status they got.
fn run_counts(r: &Recovery) -> Counts {
    let mut c = Counts::new();
    for run in &r.runs {
        let key = match run.status {
            JobStatus::Queued => "runsRequeued",
            JobStatus::Cancelled => "runsCancelled",
            _ => "runsFailed",
        };
        *c.entry(key).or_default() += 1;
    }
    c
}
