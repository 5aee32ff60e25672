//! The `BulkAction` table: one row per bulk cancel, re-run or delete, with
//! its snapshot, cursor and counts. Every batch of an action moves its
//! row's cursor in the batch's own transaction ([`advance`]), so the row is
//! always exactly as far as the committed batches.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::error::{Error, Result};

/// A `BulkAction` row, as stored (the states and names as their text).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRow {
    pub id: i64,
    pub action: String,
    pub filter: String,
    pub total: i64,
    pub done: i64,
    pub status: String,
    pub error: Option<String>,
    pub source: String,
    pub user: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub triggered_by: String,
    pub runner: String,
    pub owner_pid: i64,
    pub upto: i64,
    pub phase: i64,
    pub after_id: i64,
    pub audit_id: Option<i64>,
    pub report: String,
}

const COLUMNS: &str = "id, action, filter, total, done, status, error, source, user, createdAt, \
     finishedAt, triggeredBy, runner, ownerPid, upto, phase, afterId, auditId, report";

fn from_row(r: &Row<'_>) -> rusqlite::Result<BulkRow> {
    Ok(BulkRow {
        id: r.get(0)?,
        action: r.get(1)?,
        filter: r.get(2)?,
        total: r.get(3)?,
        done: r.get(4)?,
        status: r.get(5)?,
        error: r.get(6)?,
        source: r.get(7)?,
        user: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
        triggered_by: r.get(11)?,
        runner: r.get(12)?,
        owner_pid: r.get(13)?,
        upto: r.get(14)?,
        phase: r.get(15)?,
        after_id: r.get(16)?,
        audit_id: r.get(17)?,
        report: r.get(18)?,
    })
}

/// Records a new RUNNING action from `row` (its id, counts and cursor are
/// ignored: a new action starts at the beginning); returns its id.
pub fn insert(tx: &Transaction<'_>, row: &BulkRow) -> Result<i64> {
    tx.execute(
        "INSERT INTO BulkAction (action, filter, total, status, source, user, createdAt, \
         triggeredBy, runner, ownerPid, upto) VALUES (?1, ?2, ?3, 'RUNNING', ?4, ?5, ?6, ?7, ?8, \
         ?9, ?10)",
        params![
            row.action,
            row.filter,
            row.total,
            row.source,
            row.user,
            row.created_at,
            row.triggered_by,
            row.runner,
            row.owner_pid,
            row.upto
        ],
    )
    .map_err(Error::db("record bulk action"))?;
    Ok(tx.last_insert_rowid())
}

/// Action `id`, if there is one.
pub fn get(conn: &Connection, id: i64) -> Result<Option<BulkRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM BulkAction WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
    .map_err(Error::db("read bulk action"))
}

/// The RUNNING actions, oldest first.
pub fn running(conn: &Connection) -> Result<Vec<BulkRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM BulkAction INDEXED BY BulkAction_running \
         WHERE status = 'RUNNING' ORDER BY id"
    ))
    .and_then(|mut s| s.query_map([], from_row)?.collect())
    .map_err(Error::db("read running bulk actions"))
}

/// Where one committed batch left an action.
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    /// Runs the batch walked.
    pub walked: i64,
    pub phase: i64,
    pub after_id: i64,
    pub audit_id: i64,
    pub report: &'a str,
    /// Set when this batch was the last: the time it ended.
    pub finished_at: Option<&'a str>,
}

/// Moves action `id` past one batch, inside the batch's transaction, if
/// `owner` still owns it (false: another process took it over, and the
/// caller must roll the batch back). A total that proves low (runs that
/// entered the filter after it was counted) grows with `done`.
pub fn advance(tx: &Transaction<'_>, id: i64, owner: i64, a: &Advance<'_>) -> Result<bool> {
    tx.prepare_cached(
        "UPDATE BulkAction SET done = done + ?3, total = max(total, done + ?3), phase = ?4, \
         afterId = ?5, auditId = ?6, report = ?7, finishedAt = ?8, \
         status = CASE WHEN ?8 IS NULL THEN status ELSE 'DONE' END \
         WHERE id = ?1 AND ownerPid = ?2 AND status = 'RUNNING'",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            owner,
            a.walked,
            a.phase,
            a.after_id,
            a.audit_id,
            a.report,
            a.finished_at
        ])
    })
    .map(|n| n == 1)
    .map_err(Error::db("record bulk action progress"))
}

/// Ends RUNNING action `id` in `status` (FAILED or INTERRUPTED) with
/// `error`; false when it was no longer running.
pub fn end(tx: &Transaction<'_>, id: i64, status: &str, error: &str, now: &str) -> Result<bool> {
    tx.execute(
        "UPDATE BulkAction SET status = ?2, error = ?3, finishedAt = ?4 \
         WHERE id = ?1 AND status = 'RUNNING'",
        params![id, status, error, now],
    )
    .map(|n| n == 1)
    .map_err(Error::db("end bulk action"))
}

/// Hands RUNNING action `id` from process `from` to `to`; false when
/// another process took it first or it ended.
pub fn take_over(tx: &Transaction<'_>, id: i64, from: i64, to: i64) -> Result<bool> {
    tx.execute(
        "UPDATE BulkAction SET ownerPid = ?3 WHERE id = ?1 AND ownerPid = ?2 AND status = 'RUNNING'",
        params![id, from, to],
    )
    .map(|n| n == 1)
    .map_err(Error::db("take over bulk action"))
}
