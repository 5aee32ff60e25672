//! Enqueueing: one run or many, and re-running a finished one. Every
//! request is validated before anything is written; acknowledged runs go
//! through the process's shared group commit, an admin action's audit row
//! in the same transaction.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobRun, Trigger};
use crate::store::committer::{Committer, NewRunsAudit};
use crate::store::runs::NewRun;
use crate::worker;

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

impl Manager {
    /// Validates and enqueues one run for `by`, its audit row in the same
    /// commit; returns the run as stored.
    /// With `run_at`, the run waits as SCHEDULED until then (it is queued
    /// at once when that has passed).
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
        let at = super::delayed::due_text(run_at, Timestamp::now())?;
        let rows = self.new_runs(std::slice::from_ref(req))?;
        let rows: Vec<NewRun> = rows.into_iter().map(|r| r.at(at.clone())).collect();
        let (by, name) = (by.clone(), req.job_name.clone());
        let audit: NewRunsAudit = Box::new(move |id| {
            by.row("run.enqueue", Some(format!("run {id}")), Some(name.clone()))
        });
        self.inserted(rows, audit)
    }

    /// Commits the one run in `rows` with its audit row and returns it as
    /// inserted. It is not read back: a read costs an HTTP enqueue a pool
    /// connection, a query and the pages the commit changed (a tenth of
    /// its CPU), and the row is exactly what was inserted (a worker may
    /// have claimed it since, which the answer need not say).
    fn inserted(&self, rows: Vec<NewRun>, audit: NewRunsAudit) -> Result<JobRun> {
        let first = rows
            .first()
            .cloned()
            .ok_or_else(|| Error::Internal("no run to enqueue".into()))?;
        let c = self.committer()?.insert_audited(rows, Some(audit))?;
        let id = c
            .ids
            .first()
            .copied()
            .ok_or_else(|| Error::Internal("enqueue returned no id".into()))?;
        Ok(crate::store::rows::inserted_run(&first, id, &c.at))
    }

    /// Validates every request, then enqueues them all in one transaction
    /// (unaudited: for programs and benchmarks, not admin actions).
    pub fn enqueue_many(&self, reqs: &[EnqueueRequest]) -> Result<Vec<i64>> {
        let rows = self.new_runs(reqs)?;
        self.committer()?.insert(rows)
    }

    /// Validates every request and makes its row.
    pub(super) fn new_runs(&self, reqs: &[EnqueueRequest]) -> Result<Vec<NewRun>> {
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
        let c = Committer::start(self.store.path(), self.checkpoints.as_ref())?;
        Ok(self.committer.get_or_init(|| c))
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
        self.inserted(vec![new], audit)
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

#[cfg(test)]
mod tests;
