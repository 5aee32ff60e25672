//! Read-only queries behind the admin page: throughput and failure counts,
//! failures grouped by error, a run's stage timeline and re-run chain, and
//! the change watcher's "what changed since" look-ups.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::rows::{RUN_COLUMNS, run_from_row};
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus};

/// Runs that finished (any final status) at or after `since`.
pub fn finished_since(conn: &Connection, since: &str) -> Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM JobRun WHERE finishedAt IS NOT NULL AND finishedAt >= ?1",
    )
    .and_then(|mut s| s.query_row([since], |r| r.get(0)))
    .map_err(Error::db("count finished runs"))
}

/// FAILED runs that finished at or after `since`.
pub fn failed_since(conn: &Connection, since: &str) -> Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM JobRun WHERE finishedAt IS NOT NULL AND finishedAt >= ?1 \
         AND status = 'FAILED'",
    )
    .and_then(|mut s| s.query_row([since], |r| r.get(0)))
    .map_err(Error::db("count failed runs"))
}

/// Failures of one job type with one error message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub job_name: String,
    pub error: Option<String>,
    pub count: i64,
    pub last_at: Option<String>,
    pub last_run_id: i64,
}

/// FAILED runs finished since `since`, grouped by job type and error,
/// most recent group first.
pub fn error_groups(conn: &Connection, since: &str, limit: usize) -> Result<Vec<ErrorGroup>> {
    conn.prepare_cached(
        "SELECT jobName, error, count(*), max(finishedAt), max(id) FROM JobRun \
         WHERE finishedAt IS NOT NULL AND finishedAt >= ?1 AND status = 'FAILED' \
         GROUP BY jobName, error ORDER BY max(finishedAt) DESC, max(id) DESC LIMIT ?2",
    )
    .and_then(|mut s| {
        s.query_map(params![since, limit as i64], |r| {
            Ok(ErrorGroup {
                job_name: r.get(0)?,
                error: r.get(1)?,
                count: r.get(2)?,
                last_at: r.get(3)?,
                last_run_id: r.get(4)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("group failures"))
}

/// One entry of a run's stage timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageMark {
    pub stage: String,
    pub at: String,
}

/// The stages a run entered, from its log lines marked `"event": "stage"`.
pub fn stages(conn: &Connection, run_id: i64) -> Result<Vec<StageMark>> {
    conn.prepare_cached(
        "SELECT coalesce(json_extract(context, '$.stage'), stage, message), timestamp \
         FROM JobLog WHERE jobRunId = ?1 AND json_valid(context) \
         AND json_extract(context, '$.event') = 'stage' ORDER BY timestamp, id",
    )
    .and_then(|mut s| {
        s.query_map([run_id], |r| {
            Ok(StageMark {
                stage: r.get(0)?,
                at: r.get(1)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("read stages"))
}

/// A run in a re-run chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub id: i64,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// Runs that re-ran `run_id`, oldest first.
pub fn reruns_of(conn: &Connection, run_id: i64) -> Result<Vec<RunRef>> {
    conn.prepare_cached(
        "SELECT id, status, createdAt FROM JobRun WHERE rerunOfId = ?1 ORDER BY id LIMIT 100",
    )
    .and_then(|mut s| {
        s.query_map([run_id], |r| {
            let status: String = r.get(1)?;
            Ok(RunRef {
                id: r.get(0)?,
                status: JobStatus::parse(&status).unwrap_or(JobStatus::Queued),
                created_at: r.get(2)?,
            })
        })?
        .collect()
    })
    .map_err(Error::db("read re-runs"))
}

/// A run's id and status only.
pub fn run_ref(conn: &Connection, id: i64) -> Result<Option<RunRef>> {
    conn.prepare_cached("SELECT id, status FROM JobRun WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| {
                let status: String = r.get(1)?;
                Ok(RunRef {
                    id: r.get(0)?,
                    status: JobStatus::parse(&status).unwrap_or(JobStatus::Queued),
                    created_at: None,
                })
            })
            .optional()
        })
        .map_err(Error::db("read run"))
}

/// Runs changed after the keyset position (`updatedAt`, `id`), oldest
/// change first, at most `limit` (the change watcher pages with this).
pub fn runs_updated_after(
    conn: &Connection,
    at: &str,
    id: i64,
    limit: usize,
) -> Result<Vec<JobRun>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM JobRun INDEXED BY JobRun_updated \
         WHERE (updatedAt, id) > (?1, ?2) ORDER BY updatedAt, id LIMIT ?3"
    ))
    .and_then(|mut s| {
        s.query_map(params![at, id, limit as i64], run_from_row)?
            .collect()
    })
    .map_err(Error::db("read changed runs"))
}

/// The newest `updatedAt` of any run ("" when there are none).
pub fn last_update(conn: &Connection) -> Result<String> {
    conn.query_row("SELECT coalesce(max(updatedAt), '') FROM JobRun", [], |r| {
        r.get(0)
    })
    .map_err(Error::db("read last change"))
}
