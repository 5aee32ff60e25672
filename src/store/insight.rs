//! Read-only queries behind the admin page: throughput and failure counts,
//! a run's stage timeline and re-run chain, and
//! the change watcher's "what changed since" look-ups.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{RUN_COLUMNS, run_from_row};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobRun, JobStatus};
pub use crate::query::{RunRef, StageMark};

/// Finished runs (any final status) and FAILED runs that finished at or
/// after each of `since`, read in one snapshot (the caller's read
/// transaction, or one of its own). Exact, and bounded by job types x
/// minutes rather than by the history: the whole minutes from the first
/// one that starts at or after `since` are summed from `RunMinute`, and
/// only the part of a minute before it is counted from the finish indexes
/// (an index range of under a minute).
pub fn finished_since<const N: usize>(
    conn: &Connection,
    since: [Timestamp; N],
) -> Result<[(i64, i64); N]> {
    let _own = conn
        .is_autocommit()
        .then(|| {
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        })
        .transpose()
        .map_err(Error::db("count finished runs"))?;
    let mut out = [(0, 0); N];
    for (counts, t) in out.iter_mut().zip(since) {
        let first = t.0.div_euclid(60_000) + i64::from(t.0.rem_euclid(60_000) != 0);
        let (from, edge) = (t.to_text(), Timestamp(first * 60_000).to_text());
        let (finished, failed) = super::minutes::totals_from(conn, first)?;
        *counts = (
            finished + count_between(conn, FINISHED_BETWEEN, &from, &edge)?,
            failed + count_between(conn, FAILED_BETWEEN, &from, &edge)?,
        );
    }
    Ok(out)
}

/// Runs that finished in [?1, ?2) (public for the query-plan test).
pub const FINISHED_BETWEEN: &str = "SELECT count(*) FROM JobRun INDEXED BY JobRun_finished \
     WHERE finishedAt IS NOT NULL AND finishedAt >= ?1 AND finishedAt < ?2";

/// FAILED runs that finished in [?1, ?2), from the index of FAILED runs
/// (V21; public for the query-plan test).
pub const FAILED_BETWEEN: &str = "SELECT count(*) FROM JobRun INDEXED BY JobRun_failed \
     WHERE status = 'FAILED' AND finishedAt >= ?1 AND finishedAt < ?2";

fn count_between(conn: &Connection, sql: &str, from: &str, to: &str) -> Result<i64> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([from, to], |r| r.get(0)))
        .map_err(Error::db("count finished runs"))
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

// The change watcher's look-ups. `updatedAt` has no index: it would cost
// every claim, finish and progress write two index changes (about a sixth
// of the worker's writing). A run changes by being added (its id is new),
// while RUNNING (the few rows JobRun_status_id holds under that status), by
// finishing (JobRun_finished), or by going back to the queue (it leaves the
// RUNNING set).

/// The RUNNING runs updated at or after ?1, by id, at most ?2 (after the
/// selected columns; public for the query-plan test).
pub const RUNNING_SINCE: &str = "FROM JobRun INDEXED BY JobRun_status_id \
     WHERE status = 'RUNNING' AND updatedAt >= ?1 ORDER BY id LIMIT ?2";

/// The runs finished after the position (?1 `finishedAt`, ?2 id), oldest
/// first, at most ?3 (after the selected columns; public for the
/// query-plan test).
pub const FINISHED_AFTER: &str = "FROM JobRun INDEXED BY JobRun_finished \
     WHERE finishedAt IS NOT NULL AND finishedAt >= ?1 AND (finishedAt > ?1 OR id > ?2) \
     ORDER BY finishedAt, id LIMIT ?3";

/// Runs with an id of at least `from`, by id, at most `limit`.
pub fn runs_from_id(conn: &Connection, from: i64, limit: usize) -> Result<Vec<JobRun>> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM JobRun WHERE id >= ?1 ORDER BY id LIMIT ?2"
    ))
    .and_then(|mut s| {
        s.query_map(params![from, limit as i64], run_from_row)?
            .collect()
    })
    .map_err(Error::db("read new runs"))
}

/// The ids of the RUNNING runs, and the rows of those updated at or after
/// `at` (at most `limit`), read in one snapshot: the caller's read
/// transaction, or one of its own.
pub fn running_runs(conn: &Connection, at: &str, limit: usize) -> Result<(Vec<i64>, Vec<JobRun>)> {
    let _own = conn
        .is_autocommit()
        .then(|| {
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)
        })
        .transpose()
        .map_err(Error::db("read running runs"))?;
    let ids = conn
        .prepare_cached(
            "SELECT id FROM JobRun INDEXED BY JobRun_status_id WHERE status = 'RUNNING'",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(Error::db("read running runs"))?;
    let changed = conn
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} {RUNNING_SINCE}"))
        .and_then(|mut s| {
            s.query_map(params![at, limit as i64], run_from_row)?
                .collect()
        })
        .map_err(Error::db("read running runs"))?;
    Ok((ids, changed))
}

/// Runs finished after the keyset position (`finishedAt`, `id`), oldest
/// first, at most `limit`.
pub fn runs_finished_after(
    conn: &Connection,
    at: &str,
    id: i64,
    limit: usize,
) -> Result<Vec<JobRun>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} {FINISHED_AFTER}"))
        .and_then(|mut s| {
            s.query_map(params![at, id, limit as i64], run_from_row)?
                .collect()
        })
        .map_err(Error::db("read finished runs"))
}

/// The runs among `ids` that are QUEUED now.
pub fn queued_among(conn: &Connection, ids: &[i64]) -> Result<Vec<JobRun>> {
    let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM JobRun \
         WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'QUEUED'"
    ))
    .and_then(|mut s| s.query_map([list], run_from_row)?.collect())
    .map_err(Error::db("read re-queued runs"))
}

/// The highest run id (0 when there are none).
pub fn max_run_id(conn: &Connection) -> Result<i64> {
    // Cached: the change watcher asks after every commit it sees.
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM JobRun")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(Error::db("read the newest run id"))
}
