//! The worker's group commit: log lines, coalesced progress, finished runs,
//! and the next claims, all in one IMMEDIATE transaction. Every write for a
//! run is fenced by the worker's id and the run being RUNNING, so a worker
//! that was declared dead cannot overwrite what happened since.

use std::collections::HashMap;
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, LogLevel};
use crate::worker::{CommitTimes, WriterLoad};
#[cfg(test)]
pub use claims::CLAIM_PLAN_SQL;
use claims::claim;
pub use claims::{cancel_requested, release};
use finishes::{write_ends, write_requeue};
#[cfg(test)]
pub use limited::TYPE_QUEUE_SQL;
pub use limited::{Limits, TypeRoom};
use logs::Lines;

mod claims;
mod finishes;
mod limited;
mod logs;
mod retries;

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
    /// The run's attempt that wrote it.
    pub attempt: i64,
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
    /// The run's type and when this attempt started (the writer knows both
    /// from its claim), for the metrics' rollups: counting finished runs
    /// then reads nothing back.
    pub job_name: String,
    pub started: Option<Timestamp>,
}

/// A failed attempt its type tries again at `run_at`.
#[derive(Debug, Clone)]
pub struct RetryRecord {
    /// The attempt as it ended (status FAILED, its error and progress).
    pub finish: FinishRecord,
    pub run_at: Timestamp,
    /// The attempts the run gets in all, kept on the row for the history's
    /// "attempt 2 of 5".
    pub max_attempts: u32,
}

/// Who is committing: the worker every write is fenced by.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub worker_id: i64,
}

/// Everything one commit carries.
#[derive(Debug, Default)]
pub struct Batch {
    pub logs: Vec<LogRecord>,
    pub progress: Vec<ProgressRecord>,
    pub finishes: Vec<FinishRecord>,
    /// Failed attempts to try again later.
    pub retries: Vec<RetryRecord>,
    /// How many QUEUED runs to claim.
    pub claim: usize,
    /// When limits apply: which types the claim may start, and how many.
    pub limits: Option<Limits>,
    /// A heartbeat to record, with the writer's work so far.
    pub heartbeat: Option<WriterLoad>,
    /// Process groups of command runs that just started, as (run, pgid):
    /// small and one per command run, so they ride in the group commit.
    pub pgids: Vec<(i64, i64)>,
    /// Whether to queue the SCHEDULED runs that are due, before claiming.
    pub queue_due: bool,
    /// Which WAITING runs to queue (or cancel) because their runs ended,
    /// after the finishes and before claiming.
    pub resolve_waiting: ResolveWaiting,
}

/// Which WAITING runs a commit resolves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ResolveWaiting {
    #[default]
    No,
    /// Those waiting for the runs this commit ends.
    After,
    /// Every one: another process may have ended a run they wait for.
    All,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.progress.is_empty()
            && self.finishes.is_empty()
            && self.retries.is_empty()
            && self.claim == 0
            && self.heartbeat.is_none()
            && self.pgids.is_empty()
            && !self.queue_due
            && self.resolve_waiting == ResolveWaiting::No
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
    /// The claim under limits merges its per-type candidates by it.
    pub priority: i64,
    /// JSON text of the parameters: the executor decodes it, off the
    /// writer's thread.
    pub parameters: String,
}

/// What the commit did.
#[derive(Debug)]
pub struct BatchResult {
    /// Runs claimed, in queue order.
    pub claimed: Vec<ClaimedRun>,
    /// Runs whose writes were refused because this worker no longer owns them.
    pub fenced: Vec<i64>,
    /// False when the heartbeat found this worker no longer active.
    pub still_registered: bool,
    /// After queueing due runs: the earliest `runAt` still to come.
    pub next_due: Option<Timestamp>,
    /// The commit's time: the claimed runs' `startedAt`.
    pub at: Timestamp,
    /// How long the commit took (real time), and its parts.
    pub took: CommitTimes,
}

/// Commits `batch` in one transaction.
pub fn commit(
    conn: &mut Connection,
    me: &Claimant,
    batch: &Batch,
    at: Timestamp,
) -> Result<BatchResult> {
    let now = at.to_text();
    let began = Instant::now();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::db("begin batch"))?;
    let lock_wait = began.elapsed();
    let mut owned = Ownership::default();
    let (requeues, ends): (Vec<&FinishRecord>, Vec<&FinishRecord>) = batch
        .finishes
        .iter()
        .partition(|f| f.status == JobStatus::Queued);
    let mut lines = Lines::split(&batch.logs, &ends);
    lines.write_early(&tx, me, &mut owned)?;
    // Before the finishes: a run that started and ended within one batch
    // is still RUNNING here, which the fenced update asks for.
    for &(run_id, pgid) in &batch.pgids {
        super::runs::set_run_pgid(&tx, run_id, me.worker_id, pgid)?;
    }
    for p in &batch.progress {
        write_progress(&tx, me, &mut owned, p, &now)?;
    }
    for f in requeues {
        write_requeue(&tx, me, &mut owned, f, &now)?;
    }
    write_ends(&tx, me, &mut owned, &ends, &now)?;
    // The refusals listed so far include the early lines' and the
    // requeues' runs, which own no late line: filtering by them is harmless.
    lines.write_late(&tx, &owned.1)?;
    for r in &batch.retries {
        retries::write_retry(&tx, me, &mut owned, r, &now)?;
    }
    match batch.resolve_waiting {
        ResolveWaiting::No => {}
        ResolveWaiting::After => {
            let mut ended = super::deps::Ended::default();
            for f in &ends {
                match f.status {
                    JobStatus::Completed => ended.completed.push(f.progress.run_id),
                    _ => ended.not_completed.push(f.progress.run_id),
                }
            }
            super::deps::resolve_waiting_after(&tx, &now, &ended)?;
        }
        ResolveWaiting::All => {
            super::deps::resolve_waiting(&tx, &now)?;
        }
    }
    let still_registered = if let Some(load) = &batch.heartbeat {
        super::workers::heartbeat(&tx, me.worker_id, &now, load)?
    } else {
        true
    };
    let next_due = if batch.queue_due && still_registered {
        super::due::queue_due(&tx, &now)?;
        super::due::next_due(&tx)?
    } else {
        None
    };
    let claimed = if batch.claim > 0 && still_registered {
        match &batch.limits {
            Some(l) => limited::claim_limited(&tx, me, l, batch.claim, &now)?,
            None => claim(&tx, me, batch.claim, &now)?,
        }
    } else {
        Vec::new()
    };
    let syncing = Instant::now();
    tx.commit().map_err(Error::db("commit batch"))?;
    let took = CommitTimes::new(began.elapsed(), lock_wait, syncing.elapsed());
    super::count_commit();
    Ok(BatchResult {
        took,
        claimed,
        fenced: owned.refused(),
        still_registered,
        next_due,
        at,
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

/// What the commit tests start from: worker 1 RUNNING, `n` runs of type
/// `a` claimed by it on the writer connection, and a second connection
/// with triggers on, as another process would have.
#[cfg(test)]
pub(super) struct Claimed {
    pub file: crate::store::TestFile,
    pub conn: Connection,
    pub other: Connection,
    pub me: Claimant,
}

#[cfg(test)]
pub(super) fn claimed(name: &str, n: usize) -> Claimed {
    let file = crate::store::TestFile::new(name);
    let db = file.db();
    crate::store::Store::open(&db).unwrap();
    let mut conn = crate::store::open_writer_connection(&db).unwrap();
    let other = crate::store::open_connection(&db).unwrap();
    other
        .execute_batch(&format!(
            "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
             VALUES (1, 'h', 1, 'v', 'RUNNING', 'x', 'x');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt)
             SELECT 'a', 'QUEUED', 'x', 'x' FROM n;"
        ))
        .unwrap();
    let me = Claimant { worker_id: 1 };
    let claim = Batch {
        claim: n,
        ..Batch::default()
    };
    let got = commit(&mut conn, &me, &claim, Timestamp::now()).unwrap();
    assert_eq!(got.claimed.len(), n);
    Claimed {
        file,
        conn,
        other,
        me,
    }
}
