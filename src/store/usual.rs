//! The recent COMPLETED runs of one job type, read for what is usual for
//! it (the engine's `manager::usual` takes medians of them).

use std::sync::LazyLock;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::arms::AT_REST;
use crate::error::{Error, Result};

/// How many of a type's newest runs are looked through for COMPLETED ones:
/// a type whose recent runs all failed costs this much and no more.
const SCAN: i64 = 2_000;

/// One COMPLETED run, as far as the usual needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: i64,
    /// From its start to its finish; None when either is missing.
    pub duration_ms: Option<i64>,
    pub outcome: Map<String, Value>,
}

/// The query of [`recent_completed`]. `JobRun_name_id` holds no queued or
/// running run (V23): its condition is named, so that SQLite may use it.
static RECENT_COMPLETED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, CAST(round((julianday(finishedAt) - julianday(startedAt)) * 86400000) \
         AS INTEGER), outcomeSummary \
         FROM (SELECT id, status, startedAt, finishedAt, outcomeSummary \
               FROM JobRun INDEXED BY JobRun_name_id \
               WHERE jobName = ?1 AND {AT_REST} ORDER BY id DESC LIMIT ?2) \
         WHERE status = 'COMPLETED' ORDER BY id DESC LIMIT ?3"
    )
});

/// The newest `limit` COMPLETED runs of `job_name`, newest first, among its
/// last [`SCAN`] runs that are neither queued nor running. One walk down
/// `JobRun_name_id` from the newest id.
pub fn recent_completed(conn: &Connection, job_name: &str, limit: usize) -> Result<Vec<Sample>> {
    let mut stmt = conn
        .prepare_cached(&RECENT_COMPLETED_SQL)
        .map_err(Error::db("read recent runs"))?;
    let rows = stmt
        .query_map(params![job_name, SCAN, limit as i64], |r| {
            let outcome: Option<String> = r.get(2)?;
            Ok(Sample {
                id: r.get(0)?,
                duration_ms: r.get(1)?,
                // A summary that is not a JSON object has no counters to
                // compare; it does not make the type's usual unreadable.
                outcome: outcome
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
            })
        })
        .map_err(Error::db("read recent runs"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read recent runs"))
}
