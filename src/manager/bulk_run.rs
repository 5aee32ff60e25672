//! Carrying out a bulk action, as a durable record (`BulkAction`): it is
//! recorded at once with its total and the snapshot it walks (the newest
//! run id then, so runs it makes, or that arrive meanwhile, are never swept
//! up), then carried out 500 runs per short write transaction, each batch
//! moving the record's cursor in its own transaction. A process killed
//! mid-way therefore leaves the record exactly as far as the committed
//! batches: carrying it on from the cursor neither misses a run nor acts on
//! one twice.
//!
//! The runs of each status the action applies to are walked in turn, in id
//! order along the `(status, id)` index: a batch over several statuses at
//! once would have SQLite sort every remaining match to find the next 500.
//! Between two batches the caller rests as long as the last one held the
//! write lock (at most 200 ms): SQLite's busy handler polls, and a writer
//! that takes the lock again at once could keep the worker's commits
//! waiting for the whole action.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::bulk::{self as spec, BulkAction, BulkCounts, BulkRequest};
use super::bulk_view::{BulkRunner, BulkState, BulkView};
use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::query::RunFilter;
use crate::store::bulk::{self, Selection};
use crate::store::bulk_actions::{self, Advance, BulkRow};
use crate::store::runs::{self, NewRun};
use crate::worker;

/// Runs per transaction.
pub const BULK_BATCH: usize = 500;
/// Longest rest between two batches.
const MAX_REST: Duration = Duration::from_millis(200);

/// This process, as a `BulkAction` row's owner.
pub(super) fn me() -> i64 {
    i64::from(std::process::id())
}

/// The error that rolls back a batch whose action is no longer ours.
const NOT_OURS: &str = "the bulk action is carried out by another process";

/// What the next batch of one action works on.
struct Step {
    row: BulkRow,
    req: BulkRequest,
    filter: RunFilter,
    trigger: Trigger,
}

/// Why a batch did not commit.
enum Stop {
    /// Another process owns the action now (or it ended): leave it.
    NotOurs,
    Failed(Error),
}

impl Manager {
    /// Records `req` for `by` as a RUNNING action of this process, carried
    /// out by `runner`, with new runs getting `trigger`; counts its total
    /// first. Bad input is refused before anything is written.
    pub fn bulk_start(
        &self,
        req: &BulkRequest,
        trigger: Trigger,
        by: &Actor,
        runner: BulkRunner,
    ) -> Result<BulkView> {
        let filter = spec::narrowed(req)?;
        let (upto, total) = {
            let conn = self.store.conn()?;
            let upto = bulk::newest_run_id(&conn)?;
            let sel = Selection {
                filter: &filter,
                upto,
                not_rerun: req.action == BulkAction::Rerun,
            };
            (upto, bulk::count(&conn, &sel, None)?)
        };
        let row = BulkRow {
            id: 0,
            action: req.action.as_str().into(),
            filter: spec::filter_json(req).to_string(),
            total,
            done: 0,
            status: BulkState::Running.as_str().into(),
            error: None,
            source: by.source.clone(),
            user: by.user.clone(),
            created_at: Timestamp::now().to_text(),
            finished_at: None,
            triggered_by: trigger.as_str().into(),
            runner: runner.as_str().into(),
            owner_pid: me(),
            upto,
            phase: 0,
            after_id: 0,
            audit_id: None,
            report: "{}".into(),
        };
        let id = self
            .store
            .write("record bulk action", |tx| bulk_actions::insert(tx, &row))?;
        self.bulk_view(id)
    }

    /// Bulk action `id`.
    pub fn bulk_view(&self, id: i64) -> Result<BulkView> {
        let conn = self.store.conn()?;
        let row = bulk_actions::get(&conn, id)?.ok_or_else(|| Error::NotFound {
            what: "bulk action",
            id: id.to_string(),
        })?;
        BulkView::from_row(&row)
    }

    /// Carries action `id` on from its cursor while this process owns it:
    /// one batch per transaction, `progress` told after each, `rest` asked
    /// between two (it waits that long and says whether to go on: false
    /// leaves the action RUNNING at its cursor). An error ends the action
    /// FAILED with it, and is returned.
    pub fn bulk_carry_on(
        &self,
        id: i64,
        rest: &mut dyn FnMut(Duration) -> bool,
        progress: &mut dyn FnMut(&BulkView),
    ) -> Result<BulkView> {
        let mut step = match self.bulk_step(id) {
            Ok(Some(step)) => step,
            Ok(None) => return self.bulk_view(id),
            Err(e) => return Err(self.bulk_failed(id, e)),
        };
        loop {
            let started = Instant::now();
            match self.bulk_batch(&mut step) {
                Ok(()) => {}
                Err(Stop::NotOurs) => return self.bulk_view(id),
                Err(Stop::Failed(e)) => return Err(self.bulk_failed(id, e)),
            }
            let view = BulkView::from_row(&step.row)?;
            progress(&view);
            if view.status != BulkState::Running || !rest(started.elapsed().min(MAX_REST)) {
                return Ok(view);
            }
        }
    }

    /// Records `e` as the end of action `id` (best effort: the error is
    /// what the caller reports) and gives it back.
    fn bulk_failed(&self, id: i64, e: Error) -> Error {
        let now = Timestamp::now().to_text();
        let text = e.to_string();
        if let Err(also) = self.store.write("end bulk action", |tx| {
            bulk_actions::end(tx, id, BulkState::Failed.as_str(), &text, &now)
        }) {
            log::warn!("record that bulk action {id} failed ({text}): {also}");
        }
        e
    }

    /// Action `id` ready for its next batch, if it is RUNNING and ours.
    fn bulk_step(&self, id: i64) -> Result<Option<Step>> {
        let conn = self.store.conn()?;
        let Some(row) = bulk_actions::get(&conn, id)? else {
            return Ok(None);
        };
        if row.status != BulkState::Running.as_str() || row.owner_pid != me() {
            return Ok(None);
        }
        let bad = |what: &str| Error::Internal(format!("bulk action {id}: {what}"));
        let action = BulkAction::parse(&row.action).ok_or_else(|| bad("unknown action"))?;
        let req = spec::request_from_json(action, &row.filter)?;
        let filter = spec::narrowed(&req)?;
        let trigger = Trigger::parse(&row.triggered_by).ok_or_else(|| bad("unknown trigger"))?;
        Ok(Some(Step {
            row,
            req,
            filter,
            trigger,
        }))
    }

    /// One batch of `step` in one transaction, with the action's row and
    /// its audit row (made by the first batch) brought up to date; `step`
    /// is updated only once it committed.
    fn bulk_batch(&self, step: &mut Step) -> std::result::Result<(), Stop> {
        let result = self.store.write("bulk action", |tx| {
            let now = Timestamp::now().to_text();
            let row = &step.row;
            let statuses = &step.filter.statuses;
            let phase = usize::try_from(row.phase).unwrap_or(usize::MAX);
            let batch = match statuses.get(phase) {
                Some(status) => {
                    let one = RunFilter {
                        statuses: vec![*status],
                        ..step.filter.clone()
                    };
                    let sel = Selection {
                        filter: &one,
                        upto: row.upto,
                        not_rerun: step.req.action == BulkAction::Rerun,
                    };
                    bulk::next_batch(tx, &sel, row.after_id, BULK_BATCH)?
                }
                None => vec![],
            };
            let audit_id = match row.audit_id {
                Some(id) => id,
                None => step
                    .row_actor()
                    .row(
                        step.req.action.audit_action(),
                        Some(row.filter.clone()),
                        None,
                    )
                    .insert(tx, &now)?,
            };
            let mut counts: BulkCounts = serde_json::from_str(&row.report).unwrap_or_default();
            counts.batches += 1;
            self.act(step, tx, &batch, audit_id, &now, &mut counts)?;
            let more = batch.len() == BULK_BATCH;
            let (next_phase, after) = match batch.last() {
                Some(last) if more => (row.phase, last.id),
                _ => (row.phase + 1, 0),
            };
            let finished = next_phase as usize >= statuses.len();
            let walked = batch.len() as i64;
            let mut detail = serde_json::to_value(&counts).unwrap_or_default();
            detail["action"] = Value::from(step.req.action.as_str());
            detail["matched"] = Value::from(row.total);
            detail["auditId"] = Value::from(audit_id);
            detail["bulkActionId"] = Value::from(row.id);
            detail["done"] = Value::from(finished);
            bulk::update_audit_detail(tx, audit_id, &detail.to_string())?;
            let report = serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into());
            let advance = Advance {
                walked,
                phase: next_phase,
                after_id: after,
                audit_id,
                report: &report,
                finished_at: finished.then_some(now.as_str()),
            };
            if !bulk_actions::advance(tx, row.id, row.owner_pid, &advance)? {
                // Failing the closure rolls the batch back with it.
                return Err(Error::Conflict(NOT_OURS.into()));
            }
            let mut next = row.clone();
            next.done += walked;
            next.total = next.total.max(next.done);
            next.phase = next_phase;
            next.after_id = after;
            next.audit_id = Some(audit_id);
            next.report = report;
            if finished {
                next.status = BulkState::Done.as_str().into();
                next.finished_at = Some(now.clone());
            }
            Ok(next)
        });
        match result {
            Ok(next) => {
                step.row = next;
                Ok(())
            }
            Err(Error::Conflict(m)) if m == NOT_OURS => Err(Stop::NotOurs),
            Err(e) => Err(Stop::Failed(e)),
        }
    }

    /// Acts on one batch's runs inside its transaction, adding to `counts`.
    fn act(
        &self,
        step: &Step,
        tx: &rusqlite::Transaction<'_>,
        batch: &[crate::job::JobRun],
        audit_id: i64,
        now: &str,
        counts: &mut BulkCounts,
    ) -> Result<()> {
        let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
        match step.req.action {
            BulkAction::Cancel => {
                let (c, r) = bulk::cancel(tx, &ids, now)?;
                counts.cancelled += c as i64;
                counts.cancel_requested += r as i64;
                counts.acted += (c + r) as i64;
            }
            BulkAction::Delete => {
                let (runs, logs) = bulk::delete(tx, &ids)?;
                counts.acted += runs as i64;
                counts.log_lines_deleted += logs as i64;
            }
            BulkAction::Rerun => {
                let meta: Arc<str> = json!({"enqueuedByVersion": worker::VERSION,
                                            "bulkActionId": audit_id})
                .to_string()
                .into();
                let mut rows = Vec::with_capacity(batch.len());
                for old in batch {
                    let checked = self
                        .registry
                        .get(&old.job_name)
                        .and_then(|t| t.validate(&old.parameters));
                    match checked {
                        Ok(params) => rows.push(NewRun::new(
                            old.job_name.as_str().into(),
                            &params,
                            old.priority,
                            step.trigger.as_str(),
                            Some(old.id),
                            meta.clone(),
                        )),
                        Err(_) => counts.skipped += 1,
                    }
                }
                counts.acted += runs::insert_runs(tx, &rows, now)?.len() as i64;
            }
        }
        Ok(())
    }
}

impl Step {
    /// Who asked for the action, for its audit row.
    fn row_actor(&self) -> Actor {
        Actor {
            source: self.row.source.clone(),
            user: self.row.user.clone(),
        }
    }
}
