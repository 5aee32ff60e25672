//! The domain API shared by the CLI and the web server: enqueue, look up,
//! cancel, re-run, clean up, and the worker's status. Each action validates
//! its input before anything is written, and each admin action commits its
//! audit row in the same transaction as the change it records.

mod actor;
mod backup;
mod bulk;
mod bulk_recover;
mod bulk_run;
mod bulk_view;
pub mod database;
mod delayed;
mod deps;
mod enqueue;
mod health;
mod housekeeping;
mod insight;
mod insight_view;
mod metrics;
mod notify;
mod pauses;
pub mod restore;
mod retries;
mod schedule_view;
mod schedules;
mod unique;
mod usual;
mod view;

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus, LogLine};
use crate::maintenance::{self, Recovery};
use crate::registry::Registry;
use crate::store::committer::Committer;
use crate::store::logs::{self, LogFilter};
use crate::store::runs::{self, RunFilter};
use crate::store::{Store, workers};
use crate::worker::{self, WorkerRow, WorkerState, WorkerView};

pub use crate::query::Counts;
pub use actor::Actor;
pub use backup::check_backup_destination;
pub use bulk::{BulkAction, BulkRequest};
pub use bulk_view::{BulkRunner, BulkState};
pub use enqueue::EnqueueRequest;
pub(crate) use enqueue::enqueue_metadata;
pub use housekeeping::Housekeeping;
pub use insight_view::Window;
pub use metrics::{Metrics, WritePath};
pub use notify::{NOTIFICATIONS_MAX, NotifySummary};
pub use pauses::TypeState;
pub use retries::WaitingAction;
pub use schedule_view::{DueTime, ScheduleDetails, ScheduleView, TickView};
pub use schedules::ScheduleInput;

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
    /// The process's checkpointer, which the group commit's connection
    /// hands its checkpoints to (`serve`); None keeps SQLite's automatic
    /// checkpoint (the CLI).
    checkpoints: Option<crate::checkpointer::Nudge>,
    /// Recent COMPLETED runs per type, for what is usual for it.
    usual: Arc<usual::UsualCache>,
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
            checkpoints: None,
            usual: Arc::default(),
        }
    }

    /// Hands the checkpoints of the group commit's connection to the
    /// checkpointer `nudge` wakes (before the first enqueue).
    pub fn with_checkpoints(mut self, nudge: crate::checkpointer::Nudge) -> Self {
        self.checkpoints = Some(nudge);
        self
    }

    /// The job types.
    pub fn registry(&self) -> &Registry {
        &self.registry
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
