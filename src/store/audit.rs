//! The `Audit` table: one row per admin action, from the web server or the
//! CLI, written in the transaction of the change it records.

use rusqlite::{Connection, params};

use crate::error::{Error, Result};
pub use crate::query::{AuditEntry, AuditFilter, AuditSource};

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
    /// Records the action at `at`, inside the caller's transaction (`tx`
    /// is in one): if the row is refused, the change it records is rolled
    /// back with it.
    pub fn insert(&self, tx: &Connection, at: &str) -> Result<i64> {
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

/// How the web server marks the channel at the end of a row's `source`
/// (`127.0.0.1:5000 (page)`); see `web::http::Req::new`.
const PAGE_MARK: &str = " (page)";
const API_MARK: &str = " (api)";

/// The audit rows `filter` selects, newest first.
pub fn list(conn: &rusqlite::Connection, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    let mut sql =
        String::from("SELECT id, at, action, target, source, user, detail FROM Audit WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let text = |s: &str| rusqlite::types::Value::Text(s.to_string());
    if let Some(a) = &filter.action {
        match a.strip_suffix('*') {
            Some(prefix) => {
                // substr, not LIKE: an action's `_` or `%` is no wildcard.
                sql.push_str(" AND substr(action, 1, ?) = ?");
                args.push(rusqlite::types::Value::Integer(prefix.len() as i64));
                args.push(text(prefix));
            }
            None => {
                sql.push_str(" AND action = ?");
                args.push(text(a));
            }
        }
    }
    match filter.source {
        Some(AuditSource::Cli) => sql.push_str(" AND source = 'cli'"),
        Some(AuditSource::Page) => sql.push_str(&format!(" AND source LIKE '%{PAGE_MARK}'")),
        Some(AuditSource::Api) => sql.push_str(&format!(" AND source LIKE '%{API_MARK}'")),
        Some(AuditSource::Web) => {
            sql.push_str(&format!(
                " AND source <> 'cli' AND source NOT LIKE '%{PAGE_MARK}' \
                 AND source NOT LIKE '%{API_MARK}'"
            ));
        }
        None => {}
    }
    if let Some(u) = &filter.user {
        sql.push_str(" AND user = ?");
        args.push(text(u));
    }
    if let Some(id) = filter.run_id {
        sql.push_str(" AND target = ?");
        args.push(text(&format!("run {id}")));
    }
    if let Some(t) = &filter.since {
        sql.push_str(" AND at >= ?");
        args.push(text(t));
    }
    if let Some(t) = &filter.until {
        sql.push_str(" AND at < ?");
        args.push(text(t));
    }
    if let Some(id) = filter.before_id {
        sql.push_str(" AND id < ?");
        args.push(rusqlite::types::Value::Integer(id));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(rusqlite::types::Value::Integer(filter.limit as i64));
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("read audit"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            let source: String = r.get(4)?;
            let target: Option<String> = r.get(3)?;
            let (from, address) = channel(&source);
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                action: r.get(2)?,
                run_id: target
                    .as_deref()
                    .and_then(|t| t.strip_prefix("run "))
                    .and_then(|n| n.parse().ok()),
                target,
                from,
                address,
                user: r.get(5)?,
                detail: r.get(6)?,
            })
        })
        .map_err(Error::db("read audit"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read audit"))
}

/// A row's channel and client address, from its `source`.
fn channel(source: &str) -> (AuditSource, Option<String>) {
    if source == "cli" {
        return (AuditSource::Cli, None);
    }
    if let Some(addr) = source.strip_suffix(PAGE_MARK) {
        return (AuditSource::Page, Some(addr.to_string()));
    }
    if let Some(addr) = source.strip_suffix(API_MARK) {
        return (AuditSource::Api, Some(addr.to_string()));
    }
    (AuditSource::Web, Some(source.to_string()))
}
