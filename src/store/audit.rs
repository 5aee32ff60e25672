//! The `Audit` table: one row per admin action, from the web server or the
//! CLI, written in the transaction of the change it records.

use rusqlite::{Connection, Transaction, params};

use crate::error::{Error, Result};
pub use crate::query::AuditEntry;

/// An action to record, before it has an id and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub action: &'static str,
    pub target: Option<String>,
    /// The client's address, or `cli`.
    pub source: String,
    /// The OS user of a CLI action.
    pub user: Option<String>,
    pub detail: Option<String>,
}

impl AuditRow {
    /// Records the action at `at`, inside the caller's transaction: if the
    /// row is refused, the change it records is rolled back with it.
    pub fn insert(&self, tx: &Transaction<'_>, at: &str) -> Result<i64> {
        tx.prepare_cached(
            "INSERT INTO Audit (at, action, target, source, user, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                at,
                self.action,
                self.target,
                self.source,
                self.user,
                self.detail
            ])
        })
        .map_err(Error::db("record audit entry"))?;
        Ok(tx.last_insert_rowid())
    }
}

/// The newest entries, newest first.
pub fn recent_audit(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>> {
    conn.prepare_cached(
        "SELECT id, at, action, target, source, user, detail FROM Audit \
         ORDER BY id DESC LIMIT ?1",
    )
    .and_then(|mut s| {
        s.query_map([limit as i64], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                source: r.get(4)?,
                user: r.get(5)?,
                detail: r.get(6)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("read audit entries"))
}
