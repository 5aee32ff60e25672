//! The storage side of bulk actions over a history filter: how many runs a
//! filter selects, the next batch of them in id order (keyset: each batch
//! continues after the last id of the one before), and cancelling,
//! deleting and recording one batch inside the caller's short transaction.

use rusqlite::{Connection, Transaction, params, params_from_iter};
use serde_json::Value;

use super::arms::{Arms, QueueGroup};
use super::rows::{RUN_COLUMNS, run_from_row};
use super::runs::sql_value;
use crate::error::{Error, Result};
use crate::job::JobRun;
use crate::query::RunFilter;

/// Which runs a bulk action walks: those `filter` matches (its statuses
/// already narrowed to the action's valid ones, never empty), with an id
/// at most `upto` (the newest when the action began, so runs it makes, or
/// that arrive meanwhile, are not swept up), and for a re-run only those
/// no run was made a re-run of yet.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    pub filter: &'a RunFilter,
    pub upto: i64,
    pub not_rerun: bool,
}

impl Selection<'_> {
    /// The compound SELECT of `head` over the selected runs (see `arms`),
    /// with `extra` conditions; `groups` the queue's when ordered by id.
    fn sql(
        &self,
        head: &str,
        extra: Vec<(String, Vec<Value>)>,
        groups: Option<&[QueueGroup]>,
    ) -> (String, Vec<Value>) {
        let mut all = vec![(" AND id <= ?".to_string(), vec![Value::from(self.upto)])];
        all.extend(extra);
        if self.not_rerun {
            // Served by the partial index JobRun_rerun.
            all.push((
                " AND NOT EXISTS (SELECT 1 FROM JobRun c WHERE c.rerunOfId = JobRun.id)".into(),
                Vec::new(),
            ));
        }
        Arms {
            head,
            filter: self.filter,
            extra: all,
            groups,
        }
        .sql()
    }
}

/// The newest run id (0 in an empty file).
pub fn newest_run_id(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) FROM JobRun", [], |r| r.get(0))
        .map_err(Error::db("read newest run id"))
}

/// How many runs `sel` selects now, counting no further than `cap` when
/// given (a dry run's count stays bounded however large the history).
pub fn count(conn: &Connection, sel: &Selection<'_>, cap: Option<i64>) -> Result<i64> {
    let (mut sql, mut args) = sel.sql("SELECT 1", Vec::new(), None);
    if let Some(cap) = cap {
        sql.push_str(" LIMIT ?");
        args.push(Value::from(cap));
    }
    let sql = format!("SELECT count(*) FROM ({sql})");
    conn.prepare(&sql)
        .and_then(|mut s| s.query_row(params_from_iter(args.iter().map(sql_value)), |r| r.get(0)))
        .map_err(Error::db("count matching runs"))
}

/// Up to `limit` runs of `sel` with an id above `after`, in id order.
pub fn next_batch(
    conn: &Connection,
    sel: &Selection<'_>,
    after: i64,
    limit: usize,
) -> Result<Vec<JobRun>> {
    let groups = super::arms::groups_for(conn, sel.filter)?;
    let (sql, args) = batch_query(sel, after, limit, &groups);
    let mut stmt = conn
        .prepare(&sql)
        .map_err(Error::db("read matching runs"))?;
    let rows = stmt
        .query_map(params_from_iter(args.iter().map(sql_value)), run_from_row)
        .map_err(Error::db("read matching runs"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read matching runs"))
}

/// The SQL and arguments of [`next_batch`], with `groups` the queue's (see
/// `arms`; public for the plan test).
pub(crate) fn batch_query(
    sel: &Selection<'_>,
    after: i64,
    limit: usize,
    groups: &[QueueGroup],
) -> (String, Vec<Value>) {
    let after = vec![(" AND id > ?".to_string(), vec![Value::from(after)])];
    let head = format!("SELECT {RUN_COLUMNS}");
    let (mut sql, mut args) = sel.sql(&head, after, Some(groups));
    sql.push_str(" ORDER BY id LIMIT ?");
    args.push(Value::from(limit as i64));
    (sql, args)
}

/// `ids` as a JSON array for `json_each` (one bound parameter however many).
fn id_list(ids: &[i64]) -> String {
    Value::from(ids.to_vec()).to_string()
}

/// Cancels the runs of `ids` that have not started (QUEUED, SCHEDULED,
/// WAITING; the worker then cancels the runs that wait for these) and
/// asks the worker to stop those RUNNING. Returns (cancelled, requested);
/// runs that moved on meanwhile are left alone.
pub fn cancel(tx: &Transaction<'_>, ids: &[i64], now: &str) -> Result<(usize, usize)> {
    let list = id_list(ids);
    let cancelled = tx
        .execute(
            "UPDATE JobRun SET status = 'CANCELLED', finishedAt = ?2, updatedAt = ?2, \
             cancelRequestedAt = ?2, error = 'cancelled before it started' \
             WHERE id IN (SELECT value FROM json_each(?1)) \
             AND status IN ('QUEUED', 'SCHEDULED', 'WAITING')",
            params![list, now],
        )
        .map_err(Error::db("cancel runs"))?;
    let requested = tx
        .execute(
            "UPDATE JobRun SET cancelRequestedAt = coalesce(cancelRequestedAt, ?2), updatedAt = ?2 \
             WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'RUNNING'",
            params![list, now],
        )
        .map_err(Error::db("request cancel"))?;
    Ok((cancelled, requested))
}

/// The runs of `ids` that are finished (a RUNNING one is never deleted).
const FINISHED_OF: &str = "SELECT r.id FROM JobRun r WHERE r.id IN (SELECT value FROM json_each(?1)) \
     AND r.status IN ('COMPLETED', 'FAILED', 'CANCELLED')";

/// Deletes the runs of `ids` that are finished, with their log lines.
/// Returns (runs, log lines). Their re-runs keep theirs (`rerunOfId`
/// becomes NULL) and `MediaFile` rows their data, by the foreign keys.
pub fn delete(tx: &Transaction<'_>, ids: &[i64]) -> Result<(usize, usize)> {
    let list = id_list(ids);
    let logs = tx
        .execute(
            &format!("DELETE FROM JobLog WHERE jobRunId IN ({FINISHED_OF})"),
            [&list],
        )
        .map_err(Error::db("delete log lines"))?;
    let runs = tx
        .execute(
            &format!("DELETE FROM JobRun WHERE id IN ({FINISHED_OF})"),
            [&list],
        )
        .map_err(Error::db("delete runs"))?;
    Ok((runs, logs))
}

/// Rewrites the detail of audit row `id`: a bulk action keeps one row and
/// brings its counts up to date in each batch's own transaction, so the
/// row always says what the committed batches did.
pub fn update_audit_detail(tx: &Transaction<'_>, id: i64, detail: &str) -> Result<()> {
    tx.execute(
        "UPDATE Audit SET detail = ?2 WHERE id = ?1",
        params![id, detail],
    )
    .map(|_| ())
    .map_err(Error::db("record audit entry"))
}
