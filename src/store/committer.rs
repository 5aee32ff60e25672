//! Group commit for acknowledged enqueues. A caller that finds the commit
//! lock free becomes the leader: it writes its own runs and everything
//! other callers queued meanwhile in one transaction, answers them all,
//! and hands the lead to the first caller queued during its commit, then
//! returns to its own caller. A caller that finds the lock taken queues its
//! runs and waits for its answer, or for the lead. An enqueue returns only
//! once its run is durable; a lone caller pays no thread hand-off, and
//! concurrent callers share one fsync per round. Handing the lead on (as
//! LevelDB's writers do) keeps every caller's thread free to enqueue
//! again: a leader that stayed on would commit the others' runs, never its
//! own next one.
//!
//! When the last round carried several callers, the leader waits briefly
//! (at most as long as the last commit took, and never over a millisecond)
//! for as many to have queued again before it commits: callers woken by
//! one commit need a moment to come back, and without the wait each round
//! would carry only the first of them (like PostgreSQL's commit_delay, but
//! only when there is company to wait for).
//!
//! A caller may bring the audit row of its enqueue: it is written in the
//! round's transaction, after the runs (so it can name them), and shares
//! their fsync. A refused audit row fails the round like a refused run,
//! so no run is committed without its record. Callers without one add
//! nothing to the round but a check of an empty `Option`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::audit::AuditRow;
use super::runs::{NewRun, insert_runs};
use crate::checkpointer::{Follower, Nudge};
use crate::clock::Timestamp;
use crate::error::{Error, Result};

struct Request {
    runs: Vec<NewRun>,
    audit: Option<NewRunsAudit>,
    reply: Arc<Answer>,
    answered: bool,
}

impl Request {
    fn answer(mut self, result: Result<Committed>) {
        self.reply.send(Reply::Done(result));
        self.answered = true;
    }
}

impl Drop for Request {
    /// A request dropped unanswered (a leader that panicked mid-round)
    /// still wakes its caller, with an error.
    fn drop(&mut self) {
        if !self.answered {
            self.reply.send(Reply::Done(Err(Error::Internal(
                "enqueue was not answered".into(),
            ))));
        }
    }
}

/// Where a waiting caller is told what became of its request: a hand-off
/// of the lead, its answer, or both (a caller handed the lead can be
/// answered by another leader before it wakes). A mutex and a condition
/// variable, not a channel: crossbeam's blocking receive spins and yields
/// the processor several times before it sleeps, which under 8 HTTP
/// clients on 2 cores was a twentieth of `serve`'s CPU.
#[derive(Default)]
struct Answer {
    replies: Mutex<Replies>,
    ready: Condvar,
}

#[derive(Default)]
struct Replies {
    queue: VecDeque<Reply>,
    /// The caller is blocked in `recv`. A wake-up is a system call even
    /// when nobody waits, and a lone caller, which leads and answers
    /// itself, never waits.
    waiting: bool,
}

impl Answer {
    fn send(&self, reply: Reply) {
        let mut replies = lock(&self.replies);
        replies.queue.push_back(reply);
        let waiting = replies.waiting;
        drop(replies);
        if waiting {
            self.ready.notify_one();
        }
    }

    fn recv(&self) -> Reply {
        let mut replies = lock(&self.replies);
        loop {
            if let Some(r) = replies.queue.pop_front() {
                return r;
            }
            replies.waiting = true;
            replies = self.ready.wait(replies).unwrap_or_else(|p| p.into_inner());
            replies.waiting = false;
        }
    }

    fn is_empty(&self) -> bool {
        lock(&self.replies).queue.is_empty()
    }
}

/// The audit row of an enqueue, made from the id of its first new run
/// (known only inside the round's transaction).
pub type NewRunsAudit = Box<dyn Fn(i64) -> AuditRow + Send>;

/// A caller's committed runs, as inserted.
pub struct Committed {
    /// The new runs' ids, in the caller's order.
    pub ids: Vec<i64>,
    /// Their `createdAt` (and `updatedAt`): the round's time.
    pub at: String,
}

/// What a waiting caller is told.
enum Reply {
    /// Its runs are committed (or failed).
    Done(Result<Committed>),
    /// The leader finished a round: this caller leads the next one.
    Lead,
}

/// The shared commit path of one process.
pub struct Committer {
    queue: Mutex<Queue>,
    /// Signalled when the request a gathering leader waits for is queued.
    queued: Condvar,
    conn: Mutex<Connection>,
    /// Callers in the last round other than its leader, and how long its
    /// commit took (µs).
    last_round: AtomicUsize,
    last_commit_us: AtomicUsize,
    /// Wakes the process's checkpointer after commits (`serve`); None
    /// leaves the checkpoints to SQLite, inside the commits (the CLI).
    checkpoints: Option<Follower>,
}

/// The requests waiting for a round, and how many a leader that gathers
/// company waits for.
#[derive(Default)]
struct Queue {
    requests: Vec<Request>,
    /// 0 when no leader waits. A caller wakes the leader only with the
    /// request that makes the number: woken by every one of them, a leader
    /// waiting for 8 callers slept and woke 7 times a round, each a
    /// context switch on a machine with fewer cores than callers.
    wanted: usize,
}

/// Rounds this process committed, the requests they carried, and the
/// microseconds their leaders spent waiting for company and committing,
/// for the bench and `GET /metrics`: where a round's time goes, and how
/// many callers share a sync.
static ROUNDS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static GATHER_US: AtomicU64 = AtomicU64::new(0);
static COMMIT_US: AtomicU64 = AtomicU64::new(0);
static LOCK_US: AtomicU64 = AtomicU64::new(0);
static SYNC_US: AtomicU64 = AtomicU64::new(0);
static ANSWER_US: AtomicU64 = AtomicU64::new(0);

/// The rounds this process's committers led so far, and their time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rounds {
    pub rounds: u64,
    /// Callers' requests those rounds carried (committed, or refused
    /// together with their round).
    pub requests: u64,
    /// Leaders waiting for callers to come back (see [`Committer`]'s gather).
    pub gather_us: u64,
    /// Leaders inside the transaction, its sync included.
    pub commit_us: u64,
    /// Of `commit_us`: BEGIN IMMEDIATE, which waits for the write lock
    /// while another connection (the worker's writer, a CLI) holds it.
    pub lock_us: u64,
    /// Of `commit_us`: the COMMIT statement alone, which writes the WAL
    /// frames and syncs them (the disk's part).
    pub sync_us: u64,
    /// Of `commit_us`: waking the round's callers with their answers (the
    /// scheduler's part: on fewer cores than callers, each wake-up can
    /// take the leader's processor for a while).
    pub answer_us: u64,
}

/// The rounds so far; the bench takes the difference over a scenario.
pub fn rounds() -> Rounds {
    Rounds {
        rounds: ROUNDS.load(Ordering::Relaxed),
        requests: REQUESTS.load(Ordering::Relaxed),
        gather_us: GATHER_US.load(Ordering::Relaxed),
        commit_us: COMMIT_US.load(Ordering::Relaxed),
        lock_us: LOCK_US.load(Ordering::Relaxed),
        sync_us: SYNC_US.load(Ordering::Relaxed),
        answer_us: ANSWER_US.load(Ordering::Relaxed),
    }
}

/// The longest a leader waits for company.
const MAX_DELAY: Duration = Duration::from_millis(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves consistent data behind: the
    // queue is a list, and the connection rolls back its open transaction.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Committer {
    /// A committer with its own connection to `path`, whose checkpoints
    /// `checkpoints` takes over when given.
    pub fn start(path: &Path, checkpoints: Option<&Nudge>) -> Result<Committer> {
        let conn = super::open_writer_connection(path)?;
        let checkpoints = checkpoints.map(|n| n.follow(&conn)).transpose()?;
        Ok(Committer {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            conn: Mutex::new(conn),
            last_round: AtomicUsize::new(0),
            last_commit_us: AtomicUsize::new(0),
            checkpoints,
        })
    }

    /// Inserts `runs` and returns their ids once they are committed.
    pub fn insert(&self, runs: Vec<NewRun>) -> Result<Vec<i64>> {
        self.insert_audited(runs, None).map(|c| c.ids)
    }

    /// Inserts `runs` and, in the same transaction, the audit row `audit`
    /// makes from the first new id; returns the ids and their time once both
    /// are committed.
    pub fn insert_audited(
        &self,
        runs: Vec<NewRun>,
        audit: Option<NewRunsAudit>,
    ) -> Result<Committed> {
        let answer = Arc::new(Answer::default());
        let reply = answer.clone();
        let mut queue = lock(&self.queue);
        queue.requests.push(Request {
            runs,
            audit,
            reply,
            answered: false,
        });
        let wake = queue.wanted != 0 && queue.requests.len() >= queue.wanted;
        drop(queue);
        if wake {
            self.queued.notify_one();
        }
        loop {
            self.try_lead(&answer);
            match answer.recv() {
                Reply::Done(result) => return result,
                Reply::Lead => continue,
            }
        }
    }

    /// Leads one round if the lock is free and requests are queued, then
    /// hands the lead on. The hand-off comes after the lock is released, so
    /// the next leader finds it free, and a request queued meanwhile is
    /// never left without a leader: either its caller finds the lock free,
    /// or a leader holding it sees the request when it hands off.
    fn try_lead(&self, mine: &Answer) {
        let mut conn = match self.conn.try_lock() {
            Ok(c) => c,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        // Whether this leader's own request is still queued (another
        // leader may have committed it already).
        let own = mine.is_empty();
        let batch = self.gather(own);
        if !batch.is_empty() {
            let (requests, started) = (batch.len(), Instant::now());
            let callers = requests - usize::from(own);
            commit(&mut conn, batch);
            let took = started.elapsed().as_micros() as usize;
            self.last_round.store(callers, Ordering::Relaxed);
            self.last_commit_us.store(took, Ordering::Relaxed);
            ROUNDS.fetch_add(1, Ordering::Relaxed);
            REQUESTS.fetch_add(requests as u64, Ordering::Relaxed);
            COMMIT_US.fetch_add(took as u64, Ordering::Relaxed);
            // After the round's callers are answered: a fallback checkpoint
            // here delays only this leader's return and the next round.
            if let Some(f) = &self.checkpoints {
                f.committed(&conn);
            }
        }
        drop(conn);
        if let Some(next) = lock(&self.queue).requests.first() {
            next.reply.send(Reply::Lead);
        }
    }
}

impl Committer {
    /// Takes the queued requests; when the last round had more callers than
    /// are queued now, first waits a little for them to come back.
    fn gather(&self, own: bool) -> Vec<Request> {
        let mut queue = lock(&self.queue);
        let expected = self.last_round.load(Ordering::Relaxed) + usize::from(own);
        let waiting = queue.requests.len();
        if expected > 1 && waiting > 0 && waiting < expected {
            let delay = Duration::from_micros(self.last_commit_us.load(Ordering::Relaxed) as u64)
                .min(MAX_DELAY);
            let started = Instant::now();
            let deadline = started + delay;
            queue.wanted = expected;
            while queue.requests.len() < expected {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                queue = self
                    .queued
                    .wait_timeout(queue, left)
                    .map(|(q, _)| q)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            queue.wanted = 0;
            GATHER_US.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        std::mem::take(&mut queue.requests)
    }
}

fn commit(conn: &mut Connection, batch: Vec<Request>) {
    let now = Timestamp::now().to_text();
    // Every caller's runs in one list, so that they share multi-row
    // statements; each caller then gets its own slice of the ids.
    let all: Vec<&NewRun> = batch.iter().flat_map(|r| &r.runs).collect();
    let result = write_prepared(conn, "enqueue runs", |tx| {
        let ids = insert_runs(tx, &all, &now)?;
        record_audits(tx, &batch, &ids, &now)?;
        Ok(ids)
    });
    let answering = Instant::now();
    match result {
        Ok(ids) => {
            super::count_commit();
            let mut ids = ids.into_iter();
            for r in batch {
                let mine: Vec<i64> = ids.by_ref().take(r.runs.len()).collect();
                let at = now.clone();
                r.answer(Ok(Committed { ids: mine, at }));
            }
        }
        Err(e) => {
            for r in batch {
                r.answer(Err(e.duplicate()));
            }
        }
    }
    ANSWER_US.fetch_add(answering.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// Runs `f` in one IMMEDIATE transaction on `conn` and commits it, like
/// [`super::write_on`], but with `BEGIN IMMEDIATE` and `COMMIT` prepared
/// once and kept: a rusqlite `Transaction` parses both again each time
/// (`execute_batch`), which was a POST's only statement compiled per
/// request. A round that fails, or panics, is rolled back.
fn write_prepared<T>(
    conn: &mut Connection,
    op: &'static str,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let run = |conn: &Connection, sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(Error::db(op))
    };
    // Both are counted whatever their outcome: a BEGIN that gives up after
    // the busy timeout is the longest wait for the lock there is.
    let timed = |sql: &str, total: &AtomicU64| {
        let started = Instant::now();
        let done = run(conn, sql);
        total.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        done
    };
    timed("BEGIN IMMEDIATE", &LOCK_US)?;
    let open = Open(conn);
    let out = f(open.0)?;
    timed("COMMIT", &SYNC_US)?;
    std::mem::forget(open);
    Ok(out)
}

/// A transaction begun by [`write_prepared`]; dropped before its commit
/// (an error or a panic on the way), it rolls back, so the committer's
/// connection never stays inside a transaction.
struct Open<'c>(&'c Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Writes the audit rows the round's callers brought, each naming its
/// caller's first new run.
fn record_audits(tx: &Connection, batch: &[Request], ids: &[i64], now: &str) -> Result<()> {
    let mut first = 0;
    for r in batch {
        if let (Some(audit), Some(id)) = (&r.audit, ids.get(first)) {
            audit(*id).insert(tx, now)?;
        }
        first += r.runs.len();
    }
    Ok(())
}

#[cfg(test)]
#[path = "committer_tests.rs"]
mod tests;
