//! The worker's group commit: log lines, coalesced progress, finished runs,
//! and the next claims, all in one IMMEDIATE transaction. Every write for a
//! run is fenced by the worker's id and the run being RUNNING, so a worker
//! that was declared dead cannot overwrite what happened since.

use std::collections::HashMap;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::multirow::{self, Family};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, LogLevel};

/// One log line waiting to be written.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub run_id: i64,
    pub level: LogLevel,
    pub stage: Option<String>,
    pub message: String,
    /// JSON text of the line's context.
    pub context: Option<String>,
    pub timestamp: Timestamp,
}

/// A run's progress as the job last reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRecord {
    pub run_id: i64,
    pub stage: Option<String>,
    pub processed: i64,
    pub total: Option<i64>,
    pub unit: Option<String>,
    /// JSON text of the outcome counters.
    pub outcome: String,
}

/// How a run ended. `status` QUEUED means: put it back for another attempt.
#[derive(Debug, Clone)]
pub struct FinishRecord {
    pub progress: ProgressRecord,
    pub status: JobStatus,
    pub error: Option<String>,
    /// JSON text of the error's context.
    pub error_context: Option<String>,
}

/// Who is committing.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub worker_id: i64,
    pub version: String,
    pub hostname: String,
    pub pid: i64,
}

/// Everything one commit carries.
#[derive(Debug, Default)]
pub struct Batch {
    pub logs: Vec<LogRecord>,
    pub progress: Vec<ProgressRecord>,
    pub finishes: Vec<FinishRecord>,
    /// How many QUEUED runs to claim.
    pub claim: usize,
    /// Whether to record a heartbeat.
    pub heartbeat: bool,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.progress.is_empty()
            && self.finishes.is_empty()
            && self.claim == 0
            && !self.heartbeat
    }
}

/// A run this worker just claimed: what an executor needs to start it.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: i64,
    /// The claiming worker.
    pub worker_id: i64,
    pub job_name: String,
    pub attempt: i64,
    pub priority: i64,
    /// JSON text of the parameters: the executor decodes it, off the
    /// writer's thread.
    pub parameters: String,
}

/// What the commit did.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// Runs claimed, in queue order.
    pub claimed: Vec<ClaimedRun>,
    /// Runs whose writes were refused because this worker no longer owns them.
    pub fenced: Vec<i64>,
    /// False when the heartbeat found this worker no longer active.
    pub still_registered: bool,
}

/// Commits `batch` in one transaction.
pub fn commit(
    conn: &mut Connection,
    me: &Claimant,
    batch: &Batch,
    now: Timestamp,
) -> Result<BatchResult> {
    let now = now.to_text();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::db("begin batch"))?;
    let mut owned = Ownership::default();
    write_logs(&tx, me, &mut owned, &batch.logs)?;
    for p in &batch.progress {
        write_progress(&tx, me, &mut owned, p, &now)?;
    }
    let (requeues, ends): (Vec<&FinishRecord>, Vec<&FinishRecord>) = batch
        .finishes
        .iter()
        .partition(|f| f.status == JobStatus::Queued);
    for f in requeues {
        write_finish(&tx, me, &mut owned, f, &now)?;
    }
    for chunk in FINISH.chunks(&ends) {
        write_ends(&tx, me, &mut owned, chunk, &now)?;
    }
    let still_registered = if batch.heartbeat {
        super::workers::heartbeat(&tx, me.worker_id, &now)?
    } else {
        true
    };
    let claimed = if batch.claim > 0 && still_registered {
        claim(&tx, me, batch.claim, &now)?
    } else {
        Vec::new()
    };
    tx.commit().map_err(Error::db("commit batch"))?;
    Ok(BatchResult {
        claimed,
        fenced: owned.refused(),
        still_registered,
    })
}

/// Which runs this worker still owns, asked once per run per commit, and
/// the finished runs whose fenced update found them owned by nobody.
#[derive(Default)]
struct Ownership(HashMap<i64, bool>, Vec<i64>);

impl Ownership {
    fn owns(&mut self, tx: &Transaction<'_>, me: &Claimant, run_id: i64) -> Result<bool> {
        if let Some(v) = self.0.get(&run_id) {
            return Ok(*v);
        }
        let v = tx
            .prepare_cached(
                "SELECT count(*) FROM JobRun WHERE id = ?1 AND workerId = ?2 AND status = 'RUNNING'",
            )
            .and_then(|mut s| s.query_row(params![run_id, me.worker_id], |r| r.get::<_, i64>(0)))
            .map_err(Error::db("check run ownership"))?
            == 1;
        self.0.insert(run_id, v);
        if !v {
            self.1.push(run_id);
        }
        Ok(v)
    }

    fn refused(&self) -> Vec<i64> {
        // Runs finished in this batch are marked not-owned on purpose; only
        // the look-ups that failed (and the lost finishes) count as refused.
        let mut v: Vec<i64> = self.1.clone();
        v.sort_unstable();
        v
    }
}

/// Inserts up to 128 log lines per statement.
static LOG_INSERT: Family = Family::new(128, |n| {
    format!(
        "INSERT INTO JobLog (jobRunId, level, stage, message, context, timestamp) VALUES {}",
        multirow::values(n, 6, 1)
    )
});

fn write_logs(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    logs: &[LogRecord],
) -> Result<()> {
    let mut kept = Vec::with_capacity(logs.len());
    for l in logs {
        if owned.owns(tx, me, l.run_id)? {
            kept.push(l);
        }
    }
    // Lines of one batch mostly share their millisecond: format it once.
    let mut stamps: Vec<String> = Vec::with_capacity(kept.len());
    let mut last = Timestamp(i64::MIN);
    for l in &kept {
        let text = match stamps.last() {
            Some(t) if last == l.timestamp => t.clone(),
            _ => l.timestamp.to_text(),
        };
        last = l.timestamp;
        stamps.push(text);
    }
    let levels: Vec<&str> = kept.iter().map(|l| l.level.as_str()).collect();
    let mut at = 0;
    for chunk in LOG_INSERT.chunks(&kept) {
        let mut stmt = tx
            .prepare_cached(LOG_INSERT.sql(chunk.len()))
            .map_err(Error::db("write log lines"))?;
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 6);
        for ((l, stamp), level) in chunk.iter().zip(&stamps[at..]).zip(&levels[at..]) {
            args.extend_from_slice(&[
                &l.run_id as &dyn rusqlite::ToSql,
                level,
                &l.stage,
                &l.message,
                &l.context,
                stamp,
            ]);
        }
        at += chunk.len();
        stmt.execute(args.as_slice())
            .map_err(Error::db("write log lines"))?;
    }
    Ok(())
}

fn write_progress(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    p: &ProgressRecord,
    now: &str,
) -> Result<()> {
    if !owned.owns(tx, me, p.run_id)? {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE JobRun SET currentStage = ?2, entitiesProcessed = ?3, entitiesTotal = ?4, \
         entitiesUnit = ?5, outcomeSummary = ?6, updatedAt = ?7 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.run_id,
            p.stage,
            p.processed,
            p.total,
            p.unit,
            p.outcome,
            now
        ])
    })
    .map_err(Error::db("write progress"))?;
    Ok(())
}

/// Finishes up to 256 runs per UPDATE statement.
static FINISH: Family = Family::new(256, finish_sql);

/// Records many finished runs with one UPDATE … FROM (VALUES …): the
/// statement journal the JobRunCount triggers need is then paid once per
/// chunk, not once per run. Fenced like every write: only rows still
/// RUNNING under this worker change.
fn write_ends(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    ends: &[&FinishRecord],
    now: &str,
) -> Result<()> {
    let statuses: Vec<&str> = ends.iter().map(|f| f.status.as_str()).collect();
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + ends.len() * 9);
    args.push(&now);
    args.push(&me.worker_id);
    for (f, status) in ends.iter().zip(&statuses) {
        let p = &f.progress;
        args.extend_from_slice(&[
            &p.run_id as &dyn rusqlite::ToSql,
            status,
            &p.stage,
            &p.processed,
            &p.total,
            &p.unit,
            &p.outcome,
            &f.error,
            &f.error_context,
        ]);
    }
    let changed = tx
        .prepare_cached(FINISH.sql(ends.len()))
        .and_then(|mut stmt| stmt.execute(args.as_slice()))
        .map_err(Error::db("finish runs"))?;
    for f in ends {
        // Either way the run is no longer ours: later lines are refused.
        owned.0.insert(f.progress.run_id, false);
    }
    if changed < ends.len() {
        // Some runs were resolved by another process meanwhile (fencing);
        // find which, the rare way: ours now carry this commit's time.
        for f in ends {
            if !finished_by_me(tx, me, f, now)? {
                owned.1.push(f.progress.run_id);
            }
        }
    }
    Ok(())
}

fn finished_by_me(
    tx: &Transaction<'_>,
    me: &Claimant,
    f: &FinishRecord,
    now: &str,
) -> Result<bool> {
    tx.prepare_cached(
        "SELECT count(*) FROM JobRun WHERE id = ?1 AND workerId = ?2 AND status = ?3 \
         AND finishedAt = ?4",
    )
    .and_then(|mut s| {
        s.query_row(
            params![f.progress.run_id, me.worker_id, f.status.as_str(), now],
            |r| r.get::<_, i64>(0),
        )
    })
    .map(|n| n == 1)
    .map_err(Error::db("check finished runs"))
}

/// The UPDATE that finishes `n` runs: ?1 is `now`, ?2 the worker id.
fn finish_sql(n: usize) -> String {
    format!(
        "UPDATE JobRun SET status = v.column2, finishedAt = ?1, updatedAt = ?1, \
         currentStage = v.column3, entitiesProcessed = v.column4, entitiesTotal = v.column5, \
         entitiesUnit = v.column6, outcomeSummary = v.column7, error = v.column8, \
         errorContext = v.column9 FROM (VALUES {}) AS v \
         WHERE JobRun.id = v.column1 AND JobRun.workerId = ?2 AND JobRun.status = 'RUNNING'",
        multirow::values(n, 9, 3)
    )
}

fn write_finish(
    tx: &Transaction<'_>,
    me: &Claimant,
    owned: &mut Ownership,
    f: &FinishRecord,
    now: &str,
) -> Result<()> {
    // The update itself is fenced: zero rows changed means another process
    // resolved the run meanwhile.
    let p = &f.progress;
    let changed = if f.status == JobStatus::Queued {
        tx.prepare_cached(
            "UPDATE JobRun SET status = 'QUEUED', attempt = attempt + 1, workerId = NULL, \
             startedAt = NULL, currentStage = NULL, entitiesProcessed = 0, entitiesTotal = NULL, \
             entitiesUnit = NULL, cancelRequestedAt = NULL, updatedAt = ?2, \
             metadata = json_set(metadata, '$.requeuedAfter', ?3) \
             WHERE id = ?1 AND workerId = ?4 AND status = 'RUNNING'",
        )
        .and_then(|mut s| s.execute(params![p.run_id, now, f.error, me.worker_id]))
        .map_err(Error::db("requeue run"))?
    } else {
        tx.prepare_cached(
            "UPDATE JobRun SET status = ?2, finishedAt = ?3, updatedAt = ?3, currentStage = ?4, \
             entitiesProcessed = ?5, entitiesTotal = ?6, entitiesUnit = ?7, outcomeSummary = ?8, \
             error = ?9, errorContext = ?10 WHERE id = ?1 AND workerId = ?11 AND status = 'RUNNING'",
        )
        .and_then(|mut s| {
            s.execute(params![
                p.run_id,
                f.status.as_str(),
                now,
                p.stage,
                p.processed,
                p.total,
                p.unit,
                p.outcome,
                f.error,
                f.error_context,
                me.worker_id
            ])
        })
        .map_err(Error::db("finish run"))?
    };
    // Either way the run is no longer ours: later lines for it are refused.
    owned.0.insert(p.run_id, false);
    if changed == 0 {
        owned.1.push(p.run_id);
    }
    Ok(())
}

/// Marks up to 256 claimed runs RUNNING per statement; ?1 is the worker,
/// ?2 `now`.
static CLAIM_MARK: Family = Family::new(256, |n| {
    format!(
        "UPDATE JobRun SET status = 'RUNNING', workerId = ?1, startedAt = ?2, updatedAt = ?2 \
         FROM (VALUES {}) AS v WHERE JobRun.id = v.column1 AND JobRun.status = 'QUEUED'",
        multirow::values(n, 1, 3)
    )
});

/// Claims up to `n` runs in queue order: reads them from the queue index,
/// then marks them RUNNING. Both happen under this transaction's write
/// lock, so nothing changes in between. (One UPDATE … RETURNING did the
/// same through two temporary tables per claim.) The run records only its
/// worker's id: host, pid and version are on that Worker row.
fn claim(tx: &Transaction<'_>, me: &Claimant, n: usize, now: &str) -> Result<Vec<ClaimedRun>> {
    // INDEXED BY keeps the planner on the partial queue index: with a plain
    // index on status it would otherwise sort the whole backlog.
    let runs = tx
        .prepare_cached(
            "SELECT id, jobName, attempt, priority, parameters FROM JobRun \
             INDEXED BY JobRun_queue WHERE status = 'QUEUED' ORDER BY priority DESC, id LIMIT ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_map([n as i64], |r| {
                Ok(ClaimedRun {
                    id: r.get(0)?,
                    worker_id: me.worker_id,
                    job_name: r.get(1)?,
                    attempt: r.get(2)?,
                    priority: r.get(3)?,
                    parameters: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(Error::db("claim runs"))?;
    for chunk in CLAIM_MARK.chunks(&runs) {
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
    Ok(runs)
}

/// The claim's query text, for the query-plan test.
pub const CLAIM_PLAN_SQL: &str = "SELECT id FROM JobRun INDEXED BY JobRun_queue \
     WHERE status = 'QUEUED' ORDER BY priority DESC, id LIMIT 10";

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
    super::write_on(conn, "release runs", |tx| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn progress(run_id: i64) -> ProgressRecord {
        ProgressRecord {
            run_id,
            stage: None,
            processed: 1,
            total: Some(1),
            unit: None,
            outcome: "{}".into(),
        }
    }

    #[test]
    fn finishes_are_fenced_and_refusals_reported() {
        let dir = std::env::temp_dir().join(format!("jobmgr-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db");
        Store::open(&db).unwrap();
        let mut conn = crate::store::open_writer_connection(&db).unwrap();
        conn.execute_batch(
            "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
             VALUES (1, 'h', 1, 'v', 'RUNNING', 'x', 'x');
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES
               ('a', 'QUEUED', 'x', 'x'), ('a', 'QUEUED', 'x', 'x'), ('a', 'QUEUED', 'x', 'x');",
        )
        .unwrap();
        let me = Claimant {
            worker_id: 1,
            version: "v".into(),
            hostname: "h".into(),
            pid: 1,
        };
        let claim = Batch {
            claim: 3,
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &claim, Timestamp::now()).unwrap();
        assert_eq!(got.claimed.len(), 3);
        // Another process resolves run 2 meanwhile.
        conn.execute(
            "UPDATE JobRun SET status = 'FAILED', error = 'worker lost' WHERE id = 2",
            [],
        )
        .unwrap();
        let finish = Batch {
            finishes: (1..=3)
                .map(|id| FinishRecord {
                    progress: progress(id),
                    status: JobStatus::Completed,
                    error: None,
                    error_context: None,
                })
                .collect(),
            ..Batch::default()
        };
        let got = commit(&mut conn, &me, &finish, Timestamp::now()).unwrap();
        assert_eq!(got.fenced, vec![2]);
        let statuses: Vec<String> = conn
            .prepare("SELECT status FROM JobRun ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(statuses, ["COMPLETED", "FAILED", "COMPLETED"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
