//! Claiming queued runs in queue order, and the reads and writes around
//! claims: cancel requests for running runs, and giving back runs claimed
//! ahead that never started.

use rusqlite::{Connection, Transaction, params};

use super::{Claimant, ClaimedRun, Limits, TypeRoom};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::multirow::{self, Family};

/// Marks up to 256 claimed runs RUNNING per statement; ?1 is the worker,
/// ?2 `now`. NOT INDEXED: each listed run is found by its id; without it
/// the planner may walk the queue index and probe the list for every
/// queued run (seen: 2 ms a run with 100,000 queued beside 1,000,000
/// finished). `WHERE id IN (…)` would do without the VALUES join, but
/// measured no cheaper with the bundled SQLite (callgrind, 10,000 runs
/// drained: 26.3k instructions a run in this statement against 25.9k).
pub(in crate::store) static CLAIM_MARK: Family = Family::new(256, |n| {
    format!(
        "UPDATE JobRun NOT INDEXED SET status = 'RUNNING', workerId = ?1, startedAt = ?2, updatedAt = ?2 \
         FROM (VALUES {}) AS v WHERE JobRun.id = v.column1 AND JobRun.status = 'QUEUED'",
        multirow::values(n, 1, 3)
    )
});

/// The job types that have queued runs, in name order: a skip-scan of
/// `JobRun_queue_type`, one index seek per type, however long the queue.
const QUEUED_TYPES_SQL: &str = "WITH RECURSIVE t(name) AS ( \
     SELECT (SELECT jobName FROM JobRun INDEXED BY JobRun_queue_type \
             WHERE status = 'QUEUED' ORDER BY jobName LIMIT 1) \
     UNION ALL \
     SELECT (SELECT jobName FROM JobRun INDEXED BY JobRun_queue_type \
             WHERE status = 'QUEUED' AND jobName > t.name ORDER BY jobName LIMIT 1) \
     FROM t WHERE t.name IS NOT NULL) \
     SELECT name FROM t WHERE name IS NOT NULL";

/// Claims up to `n` runs in queue order (priority, then id) across every
/// type: the per-type queues are merged by the limited claim with no limit
/// on any type. One queue index serves both claims; a second, global one
/// cost each enqueue and each claim one more index entry. Everything
/// happens under this transaction's write lock, so nothing changes in
/// between. The run records only its worker's id: host, pid and version
/// are on that Worker row.
pub(super) fn claim(
    tx: &Transaction<'_>,
    me: &Claimant,
    n: usize,
    now: &str,
) -> Result<Vec<ClaimedRun>> {
    let limits = Limits {
        types: queued_types(tx)?
            .into_iter()
            .map(|name| TypeRoom {
                name,
                room: usize::MAX,
                group: None,
            })
            .collect(),
        groups: Vec::new(),
    };
    let with_runs = vec![true; limits.types.len()];
    super::limited::claim_in_order(tx, me, &limits, &with_runs, n, now)
}

/// The names of the job types that have queued runs, in name order.
pub(super) fn queued_types(tx: &Transaction<'_>) -> Result<Vec<String>> {
    tx.prepare_cached(QUEUED_TYPES_SQL)
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(Error::db("claim runs"))
}

/// Marks runs read from the queue RUNNING under this worker.
pub(super) fn mark_claimed(
    tx: &Transaction<'_>,
    me: &Claimant,
    runs: &[ClaimedRun],
    now: &str,
) -> Result<()> {
    for chunk in CLAIM_MARK.chunks(runs) {
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + chunk.len());
        args.push(&me.worker_id);
        args.push(&now);
        args.extend(chunk.iter().map(|r| &r.id as &dyn rusqlite::ToSql));
        let marked = tx
            .prepare_cached(CLAIM_MARK.sql(chunk.len()))
            .and_then(|mut stmt| stmt.execute(args.as_slice()))
            .map_err(Error::db("claim runs"))?;
        if marked != chunk.len() {
            return Err(Error::Conflict(format!(
                "claim marked {marked} of {} runs read under the same lock",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// The claim's query for the job types, for the query-plan test.
#[cfg(test)]
pub const CLAIM_PLAN_SQL: &str = QUEUED_TYPES_SQL;

/// Runs of this worker whose cancellation was requested.
pub fn cancel_requested(conn: &Connection, worker_id: i64) -> Result<Vec<i64>> {
    conn.prepare_cached(
        "SELECT id FROM JobRun WHERE workerId = ?1 AND status = 'RUNNING' \
         AND cancelRequestedAt IS NOT NULL",
    )
    .and_then(|mut s| s.query_map([worker_id], |r| r.get(0))?.collect())
    .map_err(Error::db("read cancel requests"))
}

/// Gives claimed runs that never started back to the queue, unchanged.
pub fn release(conn: &mut Connection, me: &Claimant, ids: &[i64], now: Timestamp) -> Result<()> {
    let now = now.to_text();
    crate::store::write_on(conn, "release runs", |tx| {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE JobRun SET status = 'QUEUED', workerId = NULL, startedAt = NULL, \
                 updatedAt = ?3 WHERE id = ?1 AND workerId = ?2 AND status = 'RUNNING'",
            )
            .map_err(Error::db("release runs"))?;
        for id in ids {
            stmt.execute(params![id, me.worker_id, now])
                .map_err(Error::db("release runs"))?;
        }
        Ok(())
    })
}
