//! Bulk actions over a history filter: cancel, re-run or delete every run
//! the filter matches, and deleting one finished run. The runs are walked
//! in id order, 500 per short write transaction, each batch continuing
//! after the last id of the one before, so 100,000 matching runs never hold
//! the write lock for long. Each batch commits with the action's one audit
//! row brought up to date, so the row always says what was done.
//!
//! Nothing is done twice when a bulk action is killed and issued again:
//! cancel and delete change only runs still in a state they apply to, and
//! a bulk re-run re-runs only runs that have no re-run yet (by anyone),
//! checked in the transaction that makes the re-runs. That rule, rather
//! than a bulk-action id to resume, makes a re-issued action finish the
//! interrupted one whatever process issues it, and keeps two concurrent
//! "re-run all failed" from re-running a run twice; after a completed bulk
//! re-run, the same filter again re-runs only the re-runs that failed in
//! turn. Each new run names the action in its metadata (`bulkActionId`,
//! the audit row's id).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, Trigger};
use crate::query::RunFilter;
use crate::store::bulk::{self, Selection};
use crate::store::runs::{self, NewRun};
use crate::worker;

/// Runs per transaction.
pub const BULK_BATCH: usize = 500;
/// Longest rest between two batches (see [`Manager::bulk`]).
const MAX_REST: Duration = Duration::from_millis(200);

/// What a bulk action does to each run it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// WAITING, SCHEDULED and QUEUED runs are cancelled at once; the worker is
    /// asked to stop RUNNING ones.
    Cancel,
    /// A new run with the same job and parameters for each finished run.
    Rerun,
    /// Finished runs go, with their log lines.
    Delete,
}

impl BulkAction {
    /// Parses the API's and the audit's name.
    pub fn parse(text: &str) -> Option<BulkAction> {
        match text {
            "cancel" => Some(BulkAction::Cancel),
            "rerun" => Some(BulkAction::Rerun),
            "delete" => Some(BulkAction::Delete),
            _ => None,
        }
    }

    /// The name the API answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Cancel => "cancel",
            BulkAction::Rerun => "rerun",
            BulkAction::Delete => "delete",
        }
    }

    /// The statuses the action applies to.
    pub fn targets(self) -> &'static [JobStatus] {
        match self {
            BulkAction::Cancel => &[
                JobStatus::Waiting,
                JobStatus::Scheduled,
                JobStatus::Queued,
                JobStatus::Running,
            ],
            BulkAction::Rerun | BulkAction::Delete => &[
                JobStatus::Completed,
                JobStatus::Failed,
                JobStatus::Cancelled,
            ],
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            BulkAction::Cancel => "runs.bulk-cancel",
            BulkAction::Rerun => "runs.bulk-rerun",
            BulkAction::Delete => "runs.bulk-delete",
        }
    }
}

/// A bulk action and the runs it is for.
#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub action: BulkAction,
    /// The history filter (its page size and cursor are ignored).
    pub filter: RunFilter,
    /// Allows a delete with an empty filter (every finished run).
    pub all: bool,
}

/// One batch to carry out: where it continues, and what it records.
struct Batch<'a> {
    req: &'a BulkRequest,
    sel: &'a Selection<'a>,
    after: i64,
    /// Whether this is the last status walked (its end ends the action).
    last_status: bool,
    trigger: Trigger,
    by: &'a Actor,
    target: &'a str,
}

/// What a bulk action did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkReport {
    pub action: &'static str,
    /// Runs the filter selected when the action began.
    pub matched: i64,
    /// Runs acted on: cancelled or asked to stop, re-run, or deleted.
    pub acted: i64,
    /// Cancel: runs cancelled before they started.
    pub cancelled: i64,
    /// Cancel: RUNNING runs whose worker was asked to stop them.
    pub cancel_requested: i64,
    /// Re-run: runs not re-run because their type is gone or their
    /// parameters no longer fit it.
    pub skipped: i64,
    /// Delete: log lines deleted with the runs.
    pub log_lines_deleted: i64,
    /// Transactions the action took.
    pub batches: i64,
    /// The action's audit row.
    pub audit_id: Option<i64>,
}

fn filter_is_empty(f: &RunFilter) -> bool {
    f.statuses.is_empty()
        && f.name.as_deref().is_none_or(str::is_empty)
        && f.q.as_deref().is_none_or(str::is_empty)
        && f.since.is_none()
        && f.until.is_none()
}

/// The filter as the audit row records it.
fn filter_json(req: &BulkRequest) -> Value {
    let f = &req.filter;
    let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
    json!({"status": statuses, "name": f.name, "q": f.q, "since": f.since,
           "until": f.until, "all": req.all})
}

/// The request's filter with its statuses narrowed to those the action
/// applies to; refuses a delete of everything without `all`, and statuses
/// the action never applies to.
fn narrowed(req: &BulkRequest) -> Result<RunFilter> {
    if req.action == BulkAction::Delete && filter_is_empty(&req.filter) && !req.all {
        return Err(Error::Invalid(
            "refusing to delete every finished run: give a filter (status, name, q, since, \
             until) or, to delete them all, all: true (--all)"
                .into(),
        ));
    }
    let targets = req.action.targets();
    let mut f = req.filter.clone();
    if f.statuses.is_empty() {
        f.statuses = targets.to_vec();
    } else {
        f.statuses.retain(|s| targets.contains(s));
        if f.statuses.is_empty() {
            let names: Vec<&str> = targets.iter().map(|s| s.as_str()).collect();
            return Err(Error::Invalid(format!(
                "{} applies only to {} runs",
                req.action.as_str(),
                names.join(", ")
            )));
        }
    }
    f.before_id = None;
    Ok(f)
}

impl Manager {
    /// How many runs `req` would act on now.
    pub fn bulk_preview(&self, req: &BulkRequest) -> Result<i64> {
        let filter = narrowed(req)?;
        let conn = self.store.conn()?;
        let sel = Selection {
            filter: &filter,
            upto: bulk::newest_run_id(&conn)?,
            not_rerun: req.action == BulkAction::Rerun,
        };
        bulk::count(&conn, &sel)
    }

    /// Carries out `req` for `by`, batch by batch (new runs get `trigger`).
    /// The runs of each status are walked in turn, in id order along the
    /// `(status, id)` index: a batch over several statuses at once would
    /// have SQLite sort every remaining match to find the next 500, which
    /// made each batch cost as much as all the rest.
    /// Between two batches it rests as long as the last one held the write
    /// lock (at most 200 ms): SQLite's busy handler polls, and a writer
    /// that takes the lock again at once could keep the worker's commits
    /// waiting for the whole action.
    pub fn bulk(&self, req: &BulkRequest, trigger: Trigger, by: &Actor) -> Result<BulkReport> {
        let filter = narrowed(req)?;
        let not_rerun = req.action == BulkAction::Rerun;
        let (upto, matched) = {
            let conn = self.store.conn()?;
            let upto = bulk::newest_run_id(&conn)?;
            let sel = Selection {
                filter: &filter,
                upto,
                not_rerun,
            };
            (upto, bulk::count(&conn, &sel)?)
        };
        let mut report = BulkReport {
            action: req.action.as_str(),
            matched,
            ..BulkReport::default()
        };
        let target = filter_json(req).to_string();
        let statuses = filter.statuses.clone();
        for (i, status) in statuses.iter().enumerate() {
            let one = RunFilter {
                statuses: vec![*status],
                ..filter.clone()
            };
            let sel = Selection {
                filter: &one,
                upto,
                not_rerun,
            };
            let last_status = i + 1 == statuses.len();
            let mut after = 0;
            loop {
                let started = Instant::now();
                let step = Batch {
                    req,
                    sel: &sel,
                    after,
                    last_status,
                    trigger,
                    by,
                    target: &target,
                };
                let (next, more) = self.bulk_batch(&step, &mut report)?;
                after = next;
                if !more {
                    break;
                }
                std::thread::sleep(started.elapsed().min(MAX_REST));
            }
        }
        Ok(report)
    }

    /// One batch of a bulk action in one transaction, with the audit row
    /// (made by the first batch) brought up to date; `report` is updated
    /// only once it committed. Returns the batch's last id and whether
    /// this status has more.
    fn bulk_batch(&self, b: &Batch<'_>, report: &mut BulkReport) -> Result<(i64, bool)> {
        self.store.write("bulk action", |tx| {
            let now = Timestamp::now().to_text();
            let batch = bulk::next_batch(tx, b.sel, b.after, BULK_BATCH)?;
            let audit_id = match report.audit_id {
                Some(id) => id,
                None => {
                    b.by.row(
                        b.req.action.audit_action(),
                        Some(b.target.to_string()),
                        None,
                    )
                    .insert(tx, &now)?
                }
            };
            let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
            let mut step = report.clone();
            step.audit_id = Some(audit_id);
            step.batches += 1;
            match b.req.action {
                BulkAction::Cancel => {
                    let (c, r) = bulk::cancel(tx, &ids, &now)?;
                    step.cancelled += c as i64;
                    step.cancel_requested += r as i64;
                    step.acted += (c + r) as i64;
                }
                BulkAction::Delete => {
                    let (runs, logs) = bulk::delete(tx, &ids)?;
                    step.acted += runs as i64;
                    step.log_lines_deleted += logs as i64;
                }
                BulkAction::Rerun => {
                    let meta: Arc<str> = json!({"enqueuedByVersion": worker::VERSION,
                                                "bulkActionId": audit_id})
                    .to_string()
                    .into();
                    let mut rows = Vec::with_capacity(batch.len());
                    for old in &batch {
                        let checked = self
                            .registry
                            .get(&old.job_name)
                            .and_then(|t| t.validate(&old.parameters));
                        match checked {
                            Ok(params) => rows.push(NewRun::new(
                                old.job_name.as_str().into(),
                                &params,
                                old.priority,
                                b.trigger.as_str(),
                                Some(old.id),
                                meta.clone(),
                            )),
                            Err(_) => step.skipped += 1,
                        }
                    }
                    step.acted += runs::insert_runs(tx, &rows, &now)?.len() as i64;
                }
            }
            let more = batch.len() == BULK_BATCH;
            let mut detail = serde_json::to_value(&step).unwrap_or_default();
            detail["done"] = Value::from(!more && b.last_status);
            bulk::update_audit_detail(tx, audit_id, &detail.to_string())?;
            *report = step;
            Ok((ids.last().copied().unwrap_or(b.after), more))
        })
    }

    /// Deletes finished run `id` with its log lines, its audit row in the
    /// same transaction; returns how many log lines went.
    pub fn delete_run(&self, id: i64, by: &Actor) -> Result<i64> {
        let run = self.get(id)?;
        let now = Timestamp::now().to_text();
        let deleted = self.store.write("delete run", |tx| {
            let (runs, logs) = bulk::delete(tx, &[id])?;
            if runs == 1 {
                let detail = Some(format!("{logs} log lines"));
                by.row("run.delete", Some(format!("run {id}")), detail)
                    .insert(tx, &now)?;
            }
            Ok((runs == 1).then_some(logs as i64))
        })?;
        deleted.ok_or_else(|| {
            Error::Conflict(format!(
                "run {id} is {}; only finished runs (COMPLETED, FAILED, CANCELLED) can be deleted",
                run.status
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_needs_a_filter_or_all() {
        let req = |all, filter| BulkRequest {
            action: BulkAction::Delete,
            filter,
            all,
        };
        assert!(narrowed(&req(false, RunFilter::default())).is_err());
        let all = narrowed(&req(true, RunFilter::default())).unwrap();
        assert_eq!(all.statuses, BulkAction::Delete.targets());
        let by_name = RunFilter {
            name: Some("x".into()),
            ..RunFilter::default()
        };
        assert!(narrowed(&req(false, by_name)).is_ok());
    }

    #[test]
    fn statuses_are_narrowed_to_the_actions_targets() {
        let filter = RunFilter {
            statuses: vec![JobStatus::Failed, JobStatus::Queued],
            ..RunFilter::default()
        };
        let req = |action| BulkRequest {
            action,
            filter: filter.clone(),
            all: false,
        };
        assert_eq!(
            narrowed(&req(BulkAction::Cancel)).unwrap().statuses,
            [JobStatus::Queued]
        );
        assert_eq!(
            narrowed(&req(BulkAction::Rerun)).unwrap().statuses,
            [JobStatus::Failed]
        );
        let only_done = BulkRequest {
            action: BulkAction::Cancel,
            filter: RunFilter {
                statuses: vec![JobStatus::Completed],
                ..RunFilter::default()
            },
            all: false,
        };
        let err = narrowed(&only_done).unwrap_err().to_string();
        assert!(
            err.contains("cancel applies only to WAITING, SCHEDULED, QUEUED, RUNNING"),
            "{err}"
        );
    }
}
