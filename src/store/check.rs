//! The queries of `jobmgr check`: SQLite's integrity check, the applied
//! migrations against the embedded ones, the run counters against the rows,
//! and the newest ids the high-water mark is compared with. All of them only
//! read; the ones that must agree with each other read in one snapshot.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};

/// The newest worker id and the newest run id (0 when there are none, or
/// no tables at all: a database that lost its schema has neither).
pub fn newest_ids(conn: &Connection) -> Result<(i64, i64)> {
    let newest = |table: &str| -> Result<i64> {
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(Error::db("read newest ids"))?;
        if !exists {
            return Ok(0);
        }
        conn.query_row(
            &format!("SELECT coalesce(max(id), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )
        .map_err(Error::db("read newest ids"))
    };
    Ok((newest("Worker")?, newest("JobRun")?))
}

/// `PRAGMA integrity_check`: empty when the file is sound, else SQLite's
/// first problems.
pub fn integrity(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(20)")
        .map_err(Error::db("check integrity"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(Error::db("check integrity"))?;
    let lines = rows
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("check integrity"))?;
    Ok(if lines == ["ok"] { Vec::new() } else { lines })
}

/// How the applied migrations compare with the ones built in.
#[derive(Debug, Default)]
pub struct SchemaReport {
    /// Built-in migrations, as `V1__init`, by version.
    pub embedded: Vec<String>,
    /// Built in but not applied.
    pub missing: Vec<String>,
    /// Applied but not built in (a newer jobmgr migrated this file).
    pub unknown: Vec<String>,
    /// Applied with a different name or checksum than the built-in one.
    pub changed: Vec<String>,
}

/// The applied migrations in refinery's history: version → (name,
/// checksum); empty when there is no history table.
pub fn applied(conn: &Connection) -> Result<BTreeMap<i64, (String, String)>> {
    let mut applied = BTreeMap::new();
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' \
             AND name = 'refinery_schema_history'",
            [],
            |r| r.get(0),
        )
        .map_err(Error::db("read applied migrations"))?;
    if has_table {
        let mut stmt = conn
            .prepare("SELECT version, name, checksum FROM refinery_schema_history")
            .map_err(Error::db("read applied migrations"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?))))
            .map_err(Error::db("read applied migrations"))?;
        for row in rows {
            let (v, rest) = row.map_err(Error::db("read applied migrations"))?;
            applied.insert(v, rest);
        }
    }
    Ok(applied)
}

/// Reads refinery's migration table and compares it with the embedded
/// migrations.
pub fn schema(conn: &Connection) -> Result<SchemaReport> {
    let runner = super::migrate::embedded::migrations::runner();
    let mut report = SchemaReport::default();
    let mut applied = applied(conn)?;
    // refinery hands them over in file-name order (V10 before V9): sorted
    // by version, the last one is the latest.
    let mut embedded: Vec<_> = runner.get_migrations().iter().collect();
    embedded.sort_by_key(|m| m.version());
    for m in embedded {
        let version = i64::from(m.version());
        let label = format!("V{version}__{}", m.name());
        match applied.remove(&version) {
            None => report.missing.push(label.clone()),
            Some((name, sum)) if name != m.name() || sum != m.checksum().to_string() => {
                report
                    .changed
                    .push(format!("{label} (applied as V{version}__{name})"));
            }
            Some(_) => {}
        }
        report.embedded.push(label);
    }
    report.unknown = applied
        .into_iter()
        .map(|(v, (name, _))| format!("V{v}__{name}"))
        .collect();
    Ok(report)
}

/// A run counter that disagrees with the rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterMismatch {
    /// `ALL` or a finished status.
    pub key: String,
    /// What `JobRunCount` says (None: the counter row is missing).
    pub counter: Option<i64>,
    /// What counting the rows gives.
    pub rows: i64,
}

/// Compares each `JobRunCount` counter with a count of the rows, in one
/// read snapshot (a worker may be writing meanwhile). Returns the counters
/// compared and the mismatches.
pub fn counters(conn: &mut Connection) -> Result<(usize, Vec<CounterMismatch>)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(Error::db("check run counters"))?;
    let mut keys: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT status FROM JobRunCount")
            .map_err(Error::db("check run counters"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(Error::db("check run counters"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::db("check run counters"))?
    };
    for wanted in ["ALL", "COMPLETED", "FAILED", "CANCELLED"] {
        if !keys.iter().any(|k| k == wanted) {
            keys.push(wanted.to_string());
        }
    }
    let mut mismatches = Vec::new();
    for key in &keys {
        let counter: Option<i64> = tx
            .query_row("SELECT n FROM JobRunCount WHERE status = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(Error::db("check run counters"))?;
        let rows: i64 = if key == "ALL" {
            tx.query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
        } else {
            tx.query_row(
                "SELECT count(*) FROM JobRun WHERE status = ?1",
                [key],
                |r| r.get(0),
            )
        }
        .map_err(Error::db("check run counters"))?;
        if counter != Some(rows) {
            mismatches.push(CounterMismatch {
                key: key.clone(),
                counter,
                rows,
            });
        }
    }
    Ok((keys.len(), mismatches))
}
