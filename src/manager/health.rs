//! Readiness: whether this database can do its work right now, with the
//! reasons when it cannot, for `GET /readyz` (a load balancer, systemd or
//! a monitor asks it).

use serde::Serialize;

use super::Manager;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{check, workers};
use crate::worker::{WorkerState, WorkerView};

/// One reason the database is not ready, with a stable code.
#[derive(Debug, Clone, Serialize)]
pub struct NotReady {
    pub code: &'static str,
    pub message: String,
}

/// The answer to "ready?": ready exactly when `reasons` is empty.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    pub reasons: Vec<NotReady>,
    /// The active (or most recent) worker's stored state, `NONE` without
    /// one (never STALE: staleness is a reason here).
    pub worker_state: WorkerView,
    pub heartbeat_age_ms: Option<i64>,
}

impl Manager {
    /// Ready means: the schema is the one this build expects, and a worker
    /// is RUNNING with a fresh heartbeat. The heartbeat is itself a
    /// committed write, so a fresh one also shows that the database
    /// accepts writes (a full disk or a lock held elsewhere stops it).
    pub fn readiness(&self) -> Result<Readiness> {
        let conn = self.store.conn()?;
        let mut reasons = schema_reasons(&check::schema(&conn)?);
        let worker = match workers::active_worker(&conn)? {
            Some(w) => Some(w),
            None => workers::latest_worker(&conn)?,
        };
        drop(conn);
        let now = Timestamp::now();
        let age = worker.as_ref().map(|w| w.heartbeat_age_ms(now));
        match &worker {
            Some(w) if w.state == WorkerState::Running => {
                let age = w.heartbeat_age_ms(now);
                if age > self.stale_after_ms {
                    reasons.push(NotReady {
                        code: "worker_stale",
                        message: format!(
                            "the worker's last heartbeat is {} s old (stale after {} s): \
                             it is hung, paused, or its writes are refused",
                            age / 1000,
                            self.stale_after_ms / 1000
                        ),
                    });
                }
            }
            Some(w) if w.state.is_active() => reasons.push(NotReady {
                code: "worker_not_running",
                message: format!("the worker is {}", w.state.as_str()),
            }),
            _ => reasons.push(NotReady {
                code: "no_worker",
                message: "no worker is running".into(),
            }),
        }
        Ok(Readiness {
            ready: reasons.is_empty(),
            reasons,
            worker_state: worker.map_or(WorkerView::None, |w| WorkerView::State(w.state)),
            heartbeat_age_ms: age,
        })
    }
}

/// Migrations missing, unknown to this build, or changed since applied.
fn schema_reasons(s: &check::SchemaReport) -> Vec<NotReady> {
    let mut out = Vec::new();
    if !s.missing.is_empty() {
        out.push(NotReady {
            code: "schema_behind",
            message: format!(
                "migrations not applied yet: {} (jobmgr applies them at start)",
                s.missing.join(", ")
            ),
        });
    }
    if !s.unknown.is_empty() || !s.changed.is_empty() {
        let names: Vec<&str> = s
            .unknown
            .iter()
            .chain(&s.changed)
            .map(String::as_str)
            .collect();
        out.push(NotReady {
            code: "schema_mismatch",
            message: format!(
                "the database's schema is not this build's: {} (a newer or different jobmgr migrated it)",
                names.join(", ")
            ),
        });
    }
    out
}
