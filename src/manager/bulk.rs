//! Bulk actions over a history filter: what they are (cancel, re-run or
//! delete every run a filter matches), which runs each applies to, the
//! dry-run count, and deleting one finished run. Carrying an action out in
//! the background, batch by batch, is [`super::bulk_run`]'s; finding the
//! actions a dead process left is [`super::bulk_recover`]'s.
//!
//! Nothing is done twice: cancel and delete change only runs still in a
//! state they apply to, and a bulk re-run re-runs only runs that have no
//! re-run yet (by anyone), checked in the transaction that makes the
//! re-runs. So two concurrent "re-run all failed" never re-run a run
//! twice, and after a completed bulk re-run the same filter again re-runs
//! only the re-runs that failed in turn. Each new run names the action in
//! its metadata (`bulkActionId`, the action's audit row id).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::query::RunFilter;
use crate::store::bulk::{self, Selection};

/// Most runs a dry run counts: past it the page says "100,000+", so the
/// count stays one bounded index walk however large the history grows.
pub const PREVIEW_CAP: i64 = 100_000;

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

    pub(super) fn audit_action(self) -> &'static str {
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

/// What a bulk action has done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkCounts {
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
}

/// A dry run's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Runs the action would act on now, at most [`PREVIEW_CAP`].
    pub matched: i64,
    /// Whether more than [`PREVIEW_CAP`] match.
    pub capped: bool,
}

fn filter_is_empty(f: &RunFilter) -> bool {
    f.statuses.is_empty()
        && f.name.as_deref().is_none_or(str::is_empty)
        && f.q.as_deref().is_none_or(str::is_empty)
        && f.since.is_none()
        && f.until.is_none()
}

/// The filter as the audit row and the action's row record it.
pub(super) fn filter_json(req: &BulkRequest) -> Value {
    let f = &req.filter;
    let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
    json!({"status": statuses, "name": f.name, "q": f.q, "since": f.since,
           "until": f.until, "all": req.all})
}

/// The request [`filter_json`] recorded, for resuming an action.
pub(super) fn request_from_json(action: BulkAction, text: &str) -> Result<BulkRequest> {
    let bad = |e: String| Error::Internal(format!("a bulk action's recorded filter: {e}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let text_of = |k: &str| v[k].as_str().map(str::to_string);
    let statuses = v["status"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|s| JobStatus::parse(s).ok_or_else(|| bad(format!("unknown status '{s}'"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(BulkRequest {
        action,
        filter: RunFilter {
            statuses,
            name: text_of("name"),
            q: text_of("q"),
            since: text_of("since"),
            until: text_of("until"),
            ..RunFilter::default()
        },
        all: v["all"].as_bool().unwrap_or(false),
    })
}

/// The request's filter with its statuses narrowed to those the action
/// applies to; refuses a delete of everything without `all`, and statuses
/// the action never applies to.
pub(super) fn narrowed(req: &BulkRequest) -> Result<RunFilter> {
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
    /// How many runs `req` would act on now, counted up to [`PREVIEW_CAP`].
    pub fn bulk_preview(&self, req: &BulkRequest) -> Result<Preview> {
        let filter = narrowed(req)?;
        let conn = self.store.conn()?;
        let sel = Selection {
            filter: &filter,
            upto: bulk::newest_run_id(&conn)?,
            not_rerun: req.action == BulkAction::Rerun,
        };
        let n = bulk::count(&conn, &sel, Some(PREVIEW_CAP + 1))?;
        Ok(Preview {
            matched: n.min(PREVIEW_CAP),
            capped: n > PREVIEW_CAP,
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
    fn a_recorded_filter_gives_the_request_back() {
        let req = BulkRequest {
            action: BulkAction::Rerun,
            filter: RunFilter {
                statuses: vec![JobStatus::Failed, JobStatus::Cancelled],
                name: Some("x".into()),
                q: None,
                since: Some("2026-12-01T00:00:00.000Z".into()),
                ..RunFilter::default()
            },
            all: true,
        };
        let back = request_from_json(req.action, &filter_json(&req).to_string()).unwrap();
        assert_eq!(filter_json(&back), filter_json(&req));
    }

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
