//! The domain API shared by the CLI and the web server: enqueue, look up,
//! cancel, re-run, clean up, and the worker's status. Each action validates
//! its input before anything is written, and each admin action writes its
//! audit row in its own transaction.

mod actor;
mod backup;
pub mod database;
mod delayed;
mod deps;
mod health;
mod insight;
mod pauses;
mod retries;
mod schedules;
mod unique;
mod view;

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus, LogLine, Trigger};
use crate::maintenance::{self, Recovery};
use crate::registry::Registry;
use crate::store::committer::{Committer, NewRunsAudit};
use crate::store::logs::{self, LogFilter};
use crate::store::runs::{self, NewRun, RunFilter};
use crate::store::{Store, workers};
use crate::worker::{self, WorkerRow, WorkerState, WorkerView};

pub use crate::query::Counts;
pub use actor::{Actor, os_user};
pub use backup::check_backup_destination;
pub use health::{NotReady, Readiness};
pub use insight::{
    AuditEntry, ErrorGroup, MAX_ERROR_HOURS, RunDetails, RunRef, StageMark, Stats, Throughput,
};
pub use pauses::TypeState;
pub use retries::WaitingAction;
pub use schedules::{DueTime, LastRunView, ScheduleDetails, ScheduleInput, ScheduleView, TickView};
pub use unique::Enqueued;

/// Priorities outside this range are refused.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -1000..=1000;

/// A request to enqueue one run.
#[derive(Debug, Clone)]
pub struct EnqueueRequest {
    pub job_name: String,
    pub parameters: Map<String, Value>,
    pub priority: i64,
    pub trigger: Trigger,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CancelResult {
    /// The run was QUEUED and is now CANCELLED.
    Cancelled,
    /// The run is RUNNING; the worker was asked to cancel it.
    Requested,
}

impl CancelResult {
    /// The name the API answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelResult::Cancelled => "cancelled",
            CancelResult::Requested => "requested",
        }
    }
}

/// The worker as the status screens show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    /// The active worker, or else the most recent one.
    pub worker: Option<WorkerRow>,
    /// STARTING/RUNNING/STOPPING/STOPPED/DEAD, or STALE when an active
    /// worker's heartbeat is too old, or NONE.
    pub state: WorkerView,
    pub heartbeat_age_ms: Option<i64>,
    pub uptime_ms: Option<i64>,
    pub server_version: String,
    pub version_drift: bool,
    /// How long a STOPPING worker has been past its drain timeout.
    pub stopping_overdue_ms: Option<i64>,
    /// How long a STOPPING worker's running jobs still have to finish
    /// before they are cancelled (0 once the drain is over).
    pub drain_left_ms: Option<i64>,
    /// What a stop gives running jobs to finish.
    pub drain_timeout_ms: i64,
}

/// The domain API over one database.
#[derive(Clone)]
pub struct Manager {
    store: Store,
    registry: Arc<Registry>,
    stale_after_ms: i64,
    drain_timeout_ms: i64,
    committer: Arc<OnceLock<Committer>>,
}

impl Manager {
    /// A manager over `store` that knows the types in `registry`.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        stale_after_ms: i64,
        drain_timeout_ms: i64,
    ) -> Self {
        Manager {
            store,
            registry,
            stale_after_ms,
            drain_timeout_ms,
            committer: Arc::new(OnceLock::new()),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The job types.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Validates and enqueues one run for `by`, its audit row in the same
    /// commit; returns the run as stored.
    pub fn enqueue(&self, req: &EnqueueRequest, by: &Actor) -> Result<JobRun> {
        self.enqueue_at(req, None, by)
    }

    /// Enqueues one run that waits as SCHEDULED until `run_at` (queued at
    /// once when that has passed), its audit row in the same commit.
    pub fn enqueue_at(
        &self,
        req: &EnqueueRequest,
        run_at: Option<Timestamp>,
        by: &Actor,
    ) -> Result<JobRun> {
        if !self.registry.policy(&req.job_name).unique.is_empty() {
            // The type's runs are unique by some parameters.
            return self.enqueue_keyed(req, run_at, None, by).map(|e| e.run);
        }
        let at = delayed::due_text(run_at, Timestamp::now())?;
        let rows = self.new_runs(std::slice::from_ref(req))?;
        let rows = rows.into_iter().map(|r| r.at(at.clone())).collect();
        let (by, name) = (by.clone(), req.job_name.clone());
        let audit: NewRunsAudit = Box::new(move |id| {
            by.row("run.enqueue", Some(format!("run {id}")), Some(name.clone()))
        });
        let ids = self.committer()?.insert_audited(rows, Some(audit))?;
        self.get(ids[0])
    }

    /// Validates every request, then enqueues them all in one transaction
    /// (unaudited: for programs and benchmarks, not admin actions).
    pub fn enqueue_many(&self, reqs: &[EnqueueRequest]) -> Result<Vec<i64>> {
        let rows = self.new_runs(reqs)?;
        self.committer()?.insert(rows)
    }

    /// Validates every request and makes its row.
    fn new_runs(&self, reqs: &[EnqueueRequest]) -> Result<Vec<NewRun>> {
        let mut checked = Vec::with_capacity(reqs.len());
        for r in reqs {
            if !PRIORITY_RANGE.contains(&r.priority) {
                return Err(Error::Invalid(format!(
                    "priority must be between {} and {}, got {}",
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end(),
                    r.priority
                )));
            }
            let params = self.registry.get(&r.job_name)?.validate(&r.parameters)?;
            checked.push(params);
        }
        let meta = enqueue_metadata();
        let mut name: Arc<str> = Arc::from("");
        let mut rows = Vec::with_capacity(reqs.len());
        for (r, p) in reqs.iter().zip(&checked) {
            // Runs of one type share their name's allocation.
            if *name != *r.job_name {
                name = r.job_name.as_str().into();
            }
            let (trigger, meta) = (r.trigger.as_str(), meta.clone());
            // The default priority (0) means "the type's own", when it has one.
            let priority = match r.priority {
                0 => self.registry.policy(&r.job_name).priority.unwrap_or(0),
                p => p,
            };
            rows.push(NewRun::new(name.clone(), p, priority, trigger, None, meta));
        }
        Ok(rows)
    }

    /// The shared group-commit thread, started on first use.
    fn committer(&self) -> Result<&Committer> {
        if let Some(c) = self.committer.get() {
            return Ok(c);
        }
        let c = Committer::start(self.store.path())?;
        Ok(self.committer.get_or_init(|| c))
    }

    /// One run; [`Error::NotFound`] when there is none.
    pub fn get(&self, id: i64) -> Result<JobRun> {
        runs::get_run(&*self.store.conn()?, id)?.ok_or(Error::NotFound {
            what: "job run",
            id: id.to_string(),
        })
    }

    /// A page of history.
    pub fn list(&self, filter: &RunFilter) -> Result<Vec<JobRun>> {
        runs::list_runs(&*self.store.conn()?, filter)
    }

    /// Runs in one status, oldest first.
    pub fn in_status(&self, status: JobStatus, limit: usize) -> Result<Vec<JobRun>> {
        runs::runs_in_status(&*self.store.conn()?, status, limit)
    }

    /// A run's log lines.
    pub fn logs(&self, id: i64, filter: &LogFilter) -> Result<Vec<LogLine>> {
        let conn = self.store.conn()?;
        if runs::get_run(&conn, id)?.is_none() {
            return Err(Error::NotFound {
                what: "job run",
                id: id.to_string(),
            });
        }
        logs::list_logs(&conn, id, filter)
    }

    /// Cancels a QUEUED run at once, or asks the worker to stop a RUNNING
    /// one; either change commits only with its audit row.
    pub fn cancel(&self, id: i64, by: &Actor) -> Result<CancelResult> {
        let now = Timestamp::now().to_text();
        let outcome = self.store.write("cancel run", |tx| {
            let result = if runs::cancel_queued(tx, id, &now)? {
                CancelResult::Cancelled
            } else if runs::request_cancel(tx, id, &now)? {
                CancelResult::Requested
            } else {
                return Ok(None);
            };
            by.row(
                "run.cancel",
                Some(format!("run {id}")),
                Some(result.as_str().into()),
            )
            .insert(tx, &now)?;
            Ok(Some(result))
        })?;
        match outcome {
            Some(r) => Ok(r),
            None => {
                let run = self.get(id)?;
                Err(Error::Conflict(format!(
                    "run {id} is {} and can no longer be cancelled",
                    run.status
                )))
            }
        }
    }

    /// Enqueues a new run with the same job and parameters as finished run
    /// `id`, its audit row in the same commit.
    pub fn rerun(&self, id: i64, trigger: Trigger, by: &Actor) -> Result<JobRun> {
        let old = self.get(id)?;
        if !old.status.is_finished() {
            return Err(Error::Conflict(format!(
                "run {id} is {}; only finished runs (COMPLETED, FAILED, CANCELLED) can be re-run",
                old.status
            )));
        }
        let params = self
            .registry
            .get(&old.job_name)?
            .validate(&old.parameters)?;
        let meta = enqueue_metadata();
        let new = NewRun::new(
            old.job_name.as_str().into(),
            &params,
            old.priority,
            trigger.as_str(),
            Some(old.id),
            meta,
        );
        let by = by.clone();
        let audit: NewRunsAudit = Box::new(move |new| {
            by.row(
                "run.rerun",
                Some(format!("run {id}")),
                Some(format!("new run {new}")),
            )
        });
        let ids = self.committer()?.insert_audited(vec![new], Some(audit))?;
        self.get(ids[0])
    }

    /// The supervised worker process `pid` exited unexpectedly: its row is
    /// DEAD and its runs resolved now.
    pub fn worker_exited(&self, pid: u32) -> Result<Recovery> {
        maintenance::process_exited(&self.store, &self.registry, pid)
    }

    /// Declares stale workers dead and resolves runs whose worker is gone,
    /// with the audit row in the same transaction.
    pub fn cleanup_stalled(&self, by: &Actor) -> Result<Recovery> {
        let record = |tx: &crate::store::Transaction<'_>, rec: &Recovery| {
            let detail = format!(
                "{} dead workers, {} runs",
                rec.dead_workers.len(),
                rec.runs.len()
            );
            let row = by.row("runs.cleanup-stalled", None, Some(detail));
            row.insert(tx, &Timestamp::now().to_text()).map(|_| ())
        };
        maintenance::cleanup_stalled(&self.store, &self.registry, self.stale_after_ms, &record)
    }

    /// RUNNING runs that [`Manager::cleanup_stalled`] would resolve.
    pub fn stalled_preview(&self) -> Result<Vec<JobRun>> {
        let ids = maintenance::preview_stalled(&self.store, self.stale_after_ms)?;
        ids.iter().map(|o| self.get(o.id)).collect()
    }

    /// The worker's status, with staleness and version drift worked out.
    pub fn worker_status(&self) -> Result<WorkerStatus> {
        let conn = self.store.conn()?;
        let worker = match workers::active_worker(&conn)? {
            Some(w) => Some(w),
            None => workers::latest_worker(&conn)?,
        };
        Ok(self.describe_worker(worker, Timestamp::now()))
    }

    fn describe_worker(&self, worker: Option<WorkerRow>, now: Timestamp) -> WorkerStatus {
        let Some(w) = worker else {
            return WorkerStatus {
                worker: None,
                state: WorkerView::None,
                heartbeat_age_ms: None,
                uptime_ms: None,
                server_version: worker::VERSION.into(),
                version_drift: false,
                stopping_overdue_ms: None,
                drain_left_ms: None,
                drain_timeout_ms: self.drain_timeout_ms,
            };
        };
        // Milliseconds since a STOPPING worker began to stop.
        let stopping_for = (w.state == WorkerState::Stopping)
            .then(|| w.stopping_at.as_deref().and_then(Timestamp::parse))
            .flatten()
            .map(|t| now.0 - t.0);
        let overdue = stopping_for
            .map(|ms| ms - self.drain_timeout_ms)
            .filter(|ms| *ms > 0);
        let drain_left = stopping_for.map(|ms| (self.drain_timeout_ms - ms).max(0));
        let uptime = w.state.is_active().then(|| {
            Timestamp::parse(&w.started_at)
                .map(|t| now.0 - t.0)
                .unwrap_or(0)
        });
        WorkerStatus {
            state: WorkerView::of(Some(&w), now, self.stale_after_ms),
            heartbeat_age_ms: Some(w.heartbeat_age_ms(now)),
            uptime_ms: uptime,
            server_version: worker::VERSION.into(),
            version_drift: w.state.is_active() && w.version != worker::VERSION,
            stopping_overdue_ms: overdue,
            drain_left_ms: drain_left,
            drain_timeout_ms: self.drain_timeout_ms,
            worker: Some(w),
        }
    }

    /// Writes a stop request for the active worker, with its audit row.
    pub fn request_worker_stop(&self, by: &Actor) -> Result<WorkerRow> {
        let now = Timestamp::now().to_text();
        self.store
            .write("request worker stop", |tx| {
                let row = workers::request_stop(tx, &now)?;
                if let Some(w) = &row {
                    let target = Some(format!("worker {}", w.id));
                    by.row("worker.stop", target, None).insert(tx, &now)?;
                }
                Ok(row)
            })?
            .ok_or_else(|| Error::Conflict("no worker is running".into()))
    }

    /// Number of runs per status.
    pub fn counts(&self) -> Result<Counts> {
        let rows = runs::count_by_status(&*self.store.conn()?)?;
        let total = rows.iter().map(|(_, n)| n).sum();
        Ok(Counts {
            by_status: rows
                .into_iter()
                .map(|(s, n)| (s.as_str().to_string(), Value::from(n)))
                .collect(),
            total,
        })
    }
}

/// The metadata every enqueued run gets, encoded once.
pub(crate) fn enqueue_metadata() -> Arc<str> {
    static META: OnceLock<Arc<str>> = OnceLock::new();
    META.get_or_init(|| {
        serde_json::json!({ "enqueuedByVersion": worker::VERSION })
            .to_string()
            .into()
    })
    .clone()
}
