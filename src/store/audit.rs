//! The `Audit` table: one row per admin action taken through the web server.

use rusqlite::{Connection, Transaction, params};

use crate::error::{Error, Result};
pub use crate::query::AuditEntry;

/// Records one action.
pub fn insert_audit(
    tx: &Transaction<'_>,
    at: &str,
    action: &str,
    target: Option<&str>,
    source: &str,
    detail: Option<&str>,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO Audit (at, action, target, source, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, action, target, source, detail],
    )
    .map_err(Error::db("record audit entry"))?;
    Ok(tx.last_insert_rowid())
}

/// The newest entries, newest first.
pub fn recent_audit(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>> {
    conn.prepare_cached(
        "SELECT id, at, action, target, source, detail FROM Audit ORDER BY id DESC LIMIT ?1",
    )
    .and_then(|mut s| {
        s.query_map([limit as i64], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                source: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("read audit entries"))
}
