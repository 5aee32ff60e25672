//! The `Housekeeping` table: the last report of each of the worker's
//! housekeeping tasks (retention, the disk guard), as JSON, so that
//! `jobmgr status` and the server can show what the worker did.

use rusqlite::{Connection, params};

use crate::error::{Error, Result};

/// One task's stored report.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub report: String,
}

/// Replaces the report of task `name`, in one short transaction.
pub fn put(
    conn: &mut Connection,
    name: &str,
    worker_id: i64,
    at: &str,
    report: &str,
) -> Result<()> {
    super::write_on(conn, "record housekeeping report", |tx| {
        put_in(tx, name, worker_id, at, report)
    })
}

/// Replaces the report of task `name` inside the caller's transaction (the
/// disk guard queues its notification in the same one).
pub fn put_in(conn: &Connection, name: &str, worker_id: i64, at: &str, report: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO Housekeeping (name, workerId, updatedAt, report) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET workerId = excluded.workerId, \
         updatedAt = excluded.updatedAt, report = excluded.report",
        params![name, worker_id, at, report],
    )
    .map_err(Error::db("record housekeeping report"))?;
    Ok(())
}

/// Every stored report, by name.
pub fn all(conn: &Connection) -> Result<Vec<Stored>> {
    let mut stmt = conn
        .prepare("SELECT name, report FROM Housekeeping ORDER BY name")
        .map_err(Error::db("read housekeeping reports"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Stored {
                name: r.get(0)?,
                report: r.get(1)?,
            })
        })
        .map_err(Error::db("read housekeeping reports"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read housekeeping reports"))
}
