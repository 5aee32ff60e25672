//! The bench scenarios and what they share. Each builds its own database,
//! measures one thing through the engine (and, in `drain.rs`, the real
//! worker), and returns figures; this file holds the context, the
//! dispatch by name, the raw SQLite ceiling and the enqueue scenarios.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::jobtypes::{Started, noop_request, registry};
use super::{BenchOptions, Measurement, TempDir, cpu_seconds};
use crate::app::worker::{RunningWorker, start_worker};
use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::registry::Registry;
use crate::runner::WorkerOptions;
use crate::store::{self, Store, bench as sb, committer};

/// Runs waiting for later beside the drained ones in `process-scheduled`.
const SCHEDULED_BESIDE: usize = 100_000;

/// State shared by the scenarios of one invocation.
pub struct Ctx {
    pub(super) opts: BenchOptions,
    pub(super) done: Arc<AtomicUsize>,
    pub(super) started: (Sender<Started>, Receiver<Started>),
    raw_single: Option<f64>,
    raw_batch: Option<f64>,
    /// The `synchronous` the current scenario's connections report, read
    /// back when it opens its database; every figure it returns carries it.
    sync: RefCell<String>,
}

impl Ctx {
    /// A context for `opts`.
    pub fn new(opts: &BenchOptions) -> Result<Ctx> {
        if opts.n == 0 {
            return Err(Error::Invalid("--n must be at least 1".into()));
        }
        Ok(Ctx {
            opts: opts.clone(),
            done: Arc::new(AtomicUsize::new(0)),
            started: unbounded(),
            raw_single: None,
            raw_batch: None,
            sync: RefCell::new(String::new()),
        })
    }

    /// Runs one scenario by name.
    pub fn run(&mut self, name: &str) -> Result<Vec<Measurement>> {
        self.sync.replace(String::new());
        let mut out = self.dispatch(name)?;
        let sync = self.sync.borrow();
        for m in out.iter_mut().filter(|m| m.synchronous.is_empty()) {
            m.synchronous = if sync.is_empty() {
                "-".into()
            } else {
                sync.clone()
            };
        }
        Ok(out)
    }

    /// Records the `synchronous` a scenario's store reports.
    pub(super) fn note_sync(&self, store: &Store) -> Result<()> {
        self.sync.replace(store.synchronous()?);
        Ok(())
    }

    fn dispatch(&mut self, name: &str) -> Result<Vec<Measurement>> {
        match name {
            "raw" => self.raw(),
            "enqueue" => self.enqueue(),
            "enqueue-concurrent" => self.enqueue_concurrent(),
            "enqueue-bulk" => self.enqueue_bulk(),
            "process" => Ok(vec![self.process(1, 0, 0)?, self.process(4, 0, 0)?]),
            "process-policies" => Ok(vec![self.process_policies(1)?, self.process_policies(4)?]),
            "process-real" => Ok(vec![self.process_real(1)?, self.process_real(4)?]),
            "process-backlog" => Ok(vec![self.process(4, self.opts.backlog, 0)?]),
            "process-history" => Ok(vec![self.process(4, 0, self.opts.backlog)?]),
            "process-scheduled" => Ok(vec![self.process_beside(4, 0, 0, SCHEDULED_BESIDE)?]),
            "latency" => self.latency(),
            "logs" => self.logs(),
            "progress" => self.progress(),
            "ws" => Ok(vec![self.ws(1)?, self.ws(100)?]),
            "api" => self.api(),
            "api-enqueue" => self.api_enqueue(),
            "footprint" => self.footprint(),
            "schedules" => self.schedules(),
            other => Err(Error::Invalid(format!("unknown scenario '{other}'"))),
        }
    }

    pub(super) fn manager(&self, db: &std::path::Path) -> Result<Manager> {
        self.manager_with(db, registry(&self.done, &self.started.0))
    }

    pub(super) fn manager_with(
        &self,
        db: &std::path::Path,
        registry: Arc<Registry>,
    ) -> Result<Manager> {
        let store = Store::open(db)?;
        self.note_sync(&store)?;
        Ok(Manager::new(store, registry, 30_000, 60_000))
    }

    pub(super) fn start_worker(
        &self,
        db: &std::path::Path,
        concurrency: usize,
    ) -> Result<RunningWorker> {
        self.start_worker_with(db, concurrency, registry(&self.done, &self.started.0))
    }

    /// A worker on `db` with the job types (and policies) of `registry`.
    pub(super) fn start_worker_with(
        &self,
        db: &std::path::Path,
        concurrency: usize,
        registry: Arc<Registry>,
    ) -> Result<RunningWorker> {
        let settings = Settings {
            db: db.to_path_buf(),
            config: None,
            heartbeat_ms: crate::config::HEARTBEAT_MS,
            stale_after_ms: crate::config::STALE_AFTER_MS,
            drain_timeout_secs: 5.0,
        };
        let opts = WorkerOptions {
            db: db.to_path_buf(),
            concurrency,
            retention: None,
            housekeeping_every: std::time::Duration::from_secs(60),
            timing: settings.timing(),
        };
        start_worker(&opts, registry, false)
    }

    fn raw(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "raw")?;
        let mut conn = store::open_connection(&dir.db())?;
        self.sync.replace(sb::synchronous(&conn)?);
        sb::create_raw_table(&conn)?;
        let single = self.opts.single_n();
        let t = Instant::now();
        sb::raw_insert(&mut conn, single, 1)?;
        let a = Measurement::new("raw-1-per-tx", single, 1, t.elapsed());
        let t = Instant::now();
        sb::raw_insert(&mut conn, self.opts.n, 1000)?;
        let b = Measurement::new("raw-1000-per-tx", self.opts.n, 1, t.elapsed());
        self.raw_single = Some(a.rate);
        self.raw_batch = Some(b.rate);
        Ok(vec![a, b])
    }

    pub(super) fn ensure_raw(&mut self) -> Result<()> {
        if self.raw_single.is_none() {
            self.raw()?;
        }
        Ok(())
    }

    pub(super) fn ratio(&self, rate: f64, batch: bool) -> Option<f64> {
        let base = if batch {
            self.raw_batch
        } else {
            self.raw_single
        }?;
        (base > 0.0).then(|| rate / base)
    }

    /// One enqueue scenario: `enqueue` on the engine over a fresh database
    /// is timed as `mode` (`n` runs by `callers` threads) and compared with
    /// the raw ceiling, one row per transaction or 1000 (`bulk`).
    fn timed_enqueues(
        &mut self,
        mode: &str,
        (n, callers, bulk): (usize, usize, bool),
        enqueue: impl FnOnce(&Manager) -> Result<()>,
    ) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let dir = TempDir::beside(&self.opts.db, mode)?;
        // As in `serve`: the group commit's checkpoints are this thread's.
        let checkpointer = Checkpointer::start(&dir.db())?;
        let m = self
            .manager(&dir.db())?
            .with_checkpoints(checkpointer.nudge());
        let page_size = sb::page_size(&store::open_connection(&dir.db())?)?;
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        let wal = store::wal_bytes();
        let before = committer::rounds();
        enqueue(&m)?;
        let rounds = committer::rounds();
        let mut out = Measurement::new(mode, n, callers, t.elapsed())
            .with_cpu(cpu)
            .with_commits(commits)
            .with_wal(wal, page_size);
        checkpointer.stop();
        out.raw_ratio = self.ratio(out.rate, bulk);
        out.note = Some(format!(
            "WAL {:.0} bytes ({:.2} pages) per run{}",
            out.wal_bytes.unwrap_or(0.0),
            out.wal_pages.unwrap_or(0.0),
            round_note(before, rounds, callers)
        ));
        Ok(vec![out])
    }

    fn enqueue(&mut self) -> Result<Vec<Measurement>> {
        let n = self.opts.single_n();
        let req = noop_request("bench-noop");
        self.timed_enqueues("enqueue", (n, 1, false), |m| {
            for _ in 0..n {
                m.enqueue_many(std::slice::from_ref(&req))?;
            }
            Ok(())
        })
    }

    fn enqueue_concurrent(&mut self) -> Result<Vec<Measurement>> {
        let (threads, n) = (8, self.opts.single_n());
        self.timed_enqueues("enqueue-concurrent", (n, threads, false), |m| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let m = m.clone();
                    // The first n % threads callers enqueue one more.
                    let per = n / threads + usize::from(i < n % threads);
                    thread::spawn(move || -> Result<()> {
                        let req = noop_request("bench-noop");
                        for _ in 0..per {
                            m.enqueue_many(std::slice::from_ref(&req))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| Error::Internal("enqueue thread panicked".into()))??;
            }
            Ok(())
        })
    }

    fn enqueue_bulk(&mut self) -> Result<Vec<Measurement>> {
        let reqs = vec![noop_request("bench-noop"); self.opts.n];
        self.timed_enqueues("enqueue-bulk", (self.opts.n, 1, true), |m| {
            m.enqueue_many(&reqs).map(|_| ())
        })
    }
}

/// Where the group commit's rounds spent their time, when several callers
/// shared them: per round, the leader's wait for them to come back and its
/// transaction (sync included). Nothing for a lone
/// caller, whose rounds never wait.
fn round_note(before: committer::Rounds, after: committer::Rounds, callers: usize) -> String {
    let rounds = after.rounds.saturating_sub(before.rounds);
    if callers < 2 || rounds == 0 {
        return String::new();
    }
    format!("; a round: {}", round_parts(before, after))
}

/// Where the rounds between `before` and `after` spent their time, per
/// round: the leader's gather, then its commit with the commit's parts:
/// BEGIN IMMEDIATE (waiting for another connection's write lock), the
/// COMMIT statement (WAL write and sync: the disk) and waking the callers
/// (the scheduler); the rest is the statements that write the rows.
pub(super) fn round_parts(before: committer::Rounds, after: committer::Rounds) -> String {
    let rounds = after.rounds.saturating_sub(before.rounds).max(1) as f64;
    let per = |us: u64, was: u64| us.saturating_sub(was) as f64 / rounds;
    format!(
        "gather {:.0} µs, commit {:.0} µs (waiting for the write lock {:.0}, its COMMIT \
         statement {:.0}, answering the callers {:.0})",
        per(after.gather_us, before.gather_us),
        per(after.commit_us, before.commit_us),
        per(after.lock_us, before.lock_us),
        per(after.sync_us, before.sync_us),
        per(after.answer_us, before.answer_us)
    )
}

pub(super) fn wait_until(within: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + within;
    while !cond()? {
        if Instant::now() > deadline {
            return Err(Error::Internal("benchmark timed out".into()));
        }
        thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
