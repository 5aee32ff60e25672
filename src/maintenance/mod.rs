//! Recovery of runs whose worker is gone: stale workers are declared dead
//! and their RUNNING runs are failed as "worker lost", or re-queued where
//! the job type is safe to retry. Used by `cleanup-stalled`, by a new worker
//! taking over the lock, and by the server's periodic tasks ([`tasks`],
//! driven by one [`ticker`]). The worker's own periodic tasks, retention
//! ([`retention`]) and the disk guard ([`disk`]), run under a ticker of
//! their own in the worker process ([`tasks::worker_tasks`]).
//!
//! A pass reads first and writes only when it has something to change, in
//! one short transaction: a periodic task that took the write lock while
//! doing nothing would, if its process were paused (SIGSTOP) inside it,
//! stop the worker from writing at all.

pub mod disk;
pub mod retention;
pub mod tasks;
pub mod ticker;

use serde::Serialize;
use std::collections::HashMap;

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
    /// Its supervisor (`jobmgr serve`) saw the process exit.
    Exited,
}

/// A cutoff no heartbeat is older than: nobody is stale.
const NOBODY_STALE: &str = "0000";

/// Records what a requested clean-up did, inside its transaction.
pub type RecordCleanup<'a> = &'a dyn Fn(&Transaction<'_>, &Recovery) -> Result<()>;

/// A clean-up someone asked for (`jobmgr cleanup-stalled`, the admin
/// page): declares workers silent for longer than `stale_after_ms` dead
/// and resolves every RUNNING run whose worker is gone, and `record`
/// writes the audit row, all in one transaction, so the row exists exactly
/// when the change does. (The periodic passes below read first instead and
/// write only with work; a request is rare and always writes its row.)
pub fn cleanup_stalled(
    store: &Store,
    registry: &Registry,
    stale_after_ms: i64,
    record: RecordCleanup<'_>,
) -> Result<Recovery> {
    let now = Timestamp::now();
    let cutoff = now.plus_ms(-stale_after_ms).to_text();
    store.write("clean up stalled runs", |tx| {
        let now_text = now.to_text();
        let mut dead = Vec::new();
        for w in workers::stale_workers(tx, &cutoff)? {
            dead.extend(workers::mark_dead_if_stale(tx, w.id, &cutoff, &now_text)?);
        }
        let recovery = resolve(tx, registry, dead, &cutoff, Cause::Stale, now)?;
        record(tx, &recovery)?;
        Ok(recovery)
    })
}

/// The stale-worker pass: reads the workers silent since before `cutoff`
/// (a plain read); when one that `spare` does not keep is among them,
/// declares those dead and resolves their runs, in one transaction. The
/// same `cutoff` is used in both steps, and heartbeats only move forward,
/// so the write can only find less to do than the read did. Returns what it
/// did and the stale workers it spared.
pub(crate) fn declare_stale(
    store: &Store,
    registry: &Registry,
    now: Timestamp,
    cutoff: &str,
    spare: &dyn Fn(&WorkerRow) -> bool,
) -> Result<(Recovery, Vec<WorkerRow>)> {
    let stale = workers::stale_workers(&*store.conn()?, cutoff)?;
    let (kept, dying): (Vec<WorkerRow>, Vec<WorkerRow>) = stale.into_iter().partition(spare);
    if dying.is_empty() {
        return Ok((Recovery::default(), kept));
    }
    let recovery = store.write("declare stale workers dead", |tx| {
        let now_text = now.to_text();
        let mut dead = Vec::with_capacity(dying.len());
        for w in &dying {
            dead.extend(workers::mark_dead_if_stale(tx, w.id, cutoff, &now_text)?);
        }
        resolve(tx, registry, dead, cutoff, Cause::Stale, now)
    })?;
    Ok((recovery, kept))
}

/// The stalled-run pass: RUNNING runs whose worker is no longer active
/// (it stopped or was declared dead without finishing them, or there is
/// none) are resolved, in one transaction, when the read finds any. A run
/// of an active worker, stale or not, is the stale-worker pass's business.
pub(crate) fn recover_orphans(
    store: &Store,
    registry: &Registry,
    now: Timestamp,
) -> Result<Recovery> {
    if runs::orphan_runs(&*store.conn()?, NOBODY_STALE)?.is_empty() {
        return Ok(Recovery::default());
    }
    store.write("recover stalled runs", |tx| {
        resolve(tx, registry, Vec::new(), NOBODY_STALE, Cause::Stale, now)
    })
}

/// What [`cleanup_stalled`] would change, without changing it.
pub fn preview_stalled(store: &Store, stale_after_ms: i64) -> Result<Vec<OrphanRun>> {
    let cutoff = Timestamp::now().plus_ms(-stale_after_ms).to_text();
    runs::orphan_runs(&*store.conn()?, &cutoff)
}

/// The supervisor saw its worker process `pid` exit unexpectedly: that
/// process's worker row is DEAD now, not when its heartbeat goes stale, and
/// its runs are resolved, in one transaction. Nothing is written when no
/// active row has that pid (it exited before registering, or a new worker
/// already took over).
pub fn process_exited(store: &Store, registry: &Registry, pid: u32) -> Result<Recovery> {
    let now = Timestamp::now();
    let host = crate::worker::hostname();
    let active = workers::active_worker(&*store.conn()?)?;
    if !active.is_some_and(|w| w.pid == i64::from(pid) && w.hostname == host) {
        return Ok(Recovery::default());
    }
    store.write("resolve runs of an exited worker", |tx| {
        let dead = workers::mark_process_dead(tx, i64::from(pid), &host, &now.to_text())?;
        if dead.is_empty() {
            return Ok(Recovery::default());
        }
        resolve(tx, registry, dead, NOBODY_STALE, Cause::Exited, now)
    })
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
            lost_by_policy(tx, registry, &run, &who, now)?
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
    let recovery = Recovery {
        dead_workers: dead,
        runs: resolved,
    };
    // In the same transaction as the change, so a notification exists
    // exactly when what it reports does.
    crate::notify::queue_recovery(tx, registry, &recovery, now)?;
    Ok(recovery)
}

/// A lost run of a type that is not retry-safe: retried after its backoff
/// when its policy retries it (a lost worker counts as a failure worth
/// trying again, like `JobError::Retry`), else failed, saying whether the
/// retries are spent.
fn lost_by_policy(
    tx: &Transaction<'_>,
    registry: &Registry,
    run: &OrphanRun,
    who: &str,
    now: Timestamp,
) -> Result<(JobStatus, String, bool)> {
    use crate::policies::{AfterFailure, Failure};
    let now_text = now.to_text();
    let e = format!("worker lost: {who}");
    let policy = registry.policy(&run.job_name);
    let failure = Failure {
        marked_retryable: true,
        exit_code: None,
    };
    let attempt = crate::store::attempts::attempt_of(tx, run.id)?;
    Ok(
        match policy.after_failure(attempt, failure, run.id as u64) {
            AfterFailure::RetryIn(wait) => {
                let at = now.plus_ms(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                let max = policy.max_attempts();
                let done = crate::store::attempts::retry_orphan(
                    tx,
                    run,
                    &e,
                    &at.to_text(),
                    max,
                    &now_text,
                )?;
                (
                    JobStatus::Scheduled,
                    format!("{e}; retry at {}", at.to_text()),
                    done,
                )
            }
            AfterFailure::GiveUp { attempts } => {
                let e = crate::policies::gave_up(attempts, &e);
                let done = runs::fail_orphan(tx, run, &e, &now_text)?;
                (JobStatus::Failed, e, done)
            }
            AfterFailure::Fail => {
                let done = runs::fail_orphan(tx, run, &e, &now_text)?;
                (JobStatus::Failed, e, done)
            }
        },
    )
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
        (Cause::Exited, true) => {
            format!("{who} exited without finishing the run (seen by its supervisor)")
        }
    }
}
