//! The `Audit` table: one row per admin action, from the web server or the
//! CLI, written in the transaction of the change it records.

use rusqlite::{Transaction, params};

use crate::error::{Error, Result};

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
