//! The writer thread: the only writer of a worker process (jobs read
//! through connections that refuse writes; `prune-history`'s batched
//! deletes are the one other write, see `context::data`). It gathers log
//! lines, progress and finished runs from the executors, commits them
//! together with the next claims in one transaction (group commit), keeps
//! the heartbeat, watches the database for cancel and stop requests, and
//! drives the stopping sequence.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::executor::Assignment;
use crate::clock::Timestamp;
use crate::context::RunShared;
use crate::error::Result;
use crate::registry::Registry;
use crate::store::batch::{Batch, Claimant};
use crate::store::{self, Connection, workers};
use crate::worker::{WorkerState, WriterLoad};

mod cycle;
mod due;
mod limits;
mod retry;
mod stopping;
mod timeouts;
mod watch;

use due::NextDue;

/// The messages executors, jobs and the signal thread send this thread
/// live with the job API, which sends most of them.
pub use crate::context::{Finished, Msg, Outcome};

/// The writer's timings (built from the settings, so they live there).
pub use crate::config::Timing;

/// Runs shorter than this count as "short": the writer claims ahead.
const SHORT_RUN: Duration = Duration::from_millis(5);
/// Most log lines gathered into one commit.
const MAX_BATCH_LINES: usize = 20_000;

struct InFlight {
    shared: Arc<RunShared>,
    job_name: String,
    /// When the claim that started it committed (its `startedAt`).
    started: Timestamp,
    /// Its attempt number, for its type's retry policy.
    attempt: i64,
    /// When its type's timeout runs out (real time, like every interval).
    deadline: Option<Instant>,
    written: (i64, u64),
    /// Cancelled by the stopping sequence rather than by a user.
    interrupted: bool,
}

enum Mode {
    Accepting,
    Stopping {
        drain_deadline: Instant,
        cancel_deadline: Option<Instant>,
    },
}

/// How the writer ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every run finished or was recorded as interrupted.
    Drained,
    /// Runs were still executing after the grace period and were recorded
    /// as interrupted; their threads are abandoned.
    Abandoned,
}

/// The writer thread's state.
pub struct Writer {
    conn: Connection,
    me: Claimant,
    rx: Receiver<Msg>,
    dispatch: Sender<Assignment>,
    undispatch: Receiver<Assignment>,
    registry: Arc<Registry>,
    timing: Timing,
    concurrency: usize,
    prefetch: usize,
    in_flight: HashMap<i64, InFlight>,
    last_log_ts: HashMap<i64, Timestamp>,
    mode: Mode,
    data_version: i64,
    queue_maybe_nonempty: bool,
    last_heartbeat: Instant,
    last_progress: Instant,
    /// Turns the WAL watch that wakes this writer on and off; without it
    /// the writer polls.
    watch: Option<super::wake::Switch>,
    /// After a wake-up whose commit was not visible yet, look again.
    recheck: crate::walwatch::Recheck,
    /// SIGTERM/SIGINT received so far. The signal also arrives as
    /// [`Msg::Stop`], but a writer retrying a refused write reads no
    /// messages; it looks here instead.
    signals: Arc<AtomicUsize>,
    /// The high-water mark in the lock file, raised after each commit.
    mark: Option<super::mark::MarkFile>,
    /// When the next SCHEDULED run becomes due.
    next_due: NextDue,
    /// Paused job types, read again after every commit by another process.
    paused: limits::Paused,
    /// Whether some type has a `max_running` or a group.
    has_limits: bool,
    /// Runs wait for others (WAITING), and something may have ended that
    /// they wait for: resolve them with the next commit.
    waiting: limits::Waiting,
    /// Wakes the checkpointer after commits; None leaves the checkpoints
    /// to SQLite, inside the commits.
    checkpoints: Option<crate::checkpointer::Follower>,
    /// This thread's work so far, written with each heartbeat.
    load: WriterLoad,
}

/// The shortest wait between two passes.
const RECHECK_POLL: Duration = crate::walwatch::RECHECK_POLL;

impl Writer {
    /// A writer for the registered worker `me`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conn: Connection,
        me: Claimant,
        rx: Receiver<Msg>,
        dispatch: (Sender<Assignment>, Receiver<Assignment>),
        registry: Arc<Registry>,
        timing: Timing,
        concurrency: usize,
    ) -> Result<Writer> {
        let next_due = NextDue::read(&conn)?;
        let paused = limits::Paused::read(&conn)?;
        Ok(Writer {
            next_due,
            paused,
            has_limits: registry.has_limits(),
            // The first pass reads it again as changed (its data_version
            // is unknown), so runs that ended while no worker ran count.
            waiting: limits::Waiting::read(&conn)?,
            conn,
            me,
            rx,
            dispatch: dispatch.0,
            undispatch: dispatch.1,
            registry,
            timing,
            concurrency,
            prefetch: 0,
            in_flight: HashMap::new(),
            last_log_ts: HashMap::new(),
            mode: Mode::Accepting,
            // No version yet: the first pass reads the worker row whatever
            // the version, so a stop requested between registration and
            // now (the page shows the worker as soon as it registers) is
            // not missed.
            data_version: i64::MIN,
            queue_maybe_nonempty: true,
            last_heartbeat: Instant::now(),
            last_progress: Instant::now(),
            watch: None,
            recheck: Default::default(),
            signals: Arc::new(AtomicUsize::new(0)),
            mark: None,
            checkpoints: None,
            load: WriterLoad::default(),
        })
    }

    /// Gives the writer the checkpointer its connection's checkpoints were
    /// handed to.
    pub fn with_checkpoints(mut self, follower: crate::checkpointer::Follower) -> Writer {
        self.checkpoints = Some(follower);
        self
    }

    /// Gives the writer the count of stop signals the process received.
    pub fn with_signals(mut self, signals: Arc<AtomicUsize>) -> Writer {
        self.signals = signals;
        self
    }

    /// Gives the writer the high-water mark to keep.
    pub fn with_mark(mut self, mark: super::mark::MarkFile) -> Writer {
        self.mark = Some(mark);
        self
    }

    /// Gives the writer the switch of the WAL watcher that sends it
    /// [`Msg::DbChanged`].
    pub fn with_watcher(mut self, watch: Option<super::wake::Switch>) -> Writer {
        self.watch = watch;
        self
    }

    fn watching(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| w.is_on())
    }

    /// Keeps the WAL watched only while a commit by another process could
    /// matter at once: not while this writer is draining a queue it knows
    /// is non-empty (stop and cancel requests are still seen on every
    /// pass, and at least every busy poll).
    fn adjust_watch(&mut self) {
        let wanted = !(self.accepting() && self.queue_maybe_nonempty);
        if let Some(w) = self.watch.as_mut()
            && w.is_on() != wanted
            && !w.set(wanted)
        {
            self.watch = None;
        }
    }

    /// Runs until the worker has stopped.
    pub fn run(mut self) -> Result<Exit> {
        self.set_state(WorkerState::Running)?;
        log::info!("worker {} running", self.me.worker_id);
        loop {
            let mut batch = Batch::default();
            let mut nudged = false;
            let mut fast = 0usize;
            let received = self.rx.recv_timeout(self.next_wait());
            // Busy from here to the next wait: the pass's commit, and
            // the reading of what came meanwhile.
            let busy = Instant::now();
            match received {
                Ok(m) => self.absorb(m, &mut batch, &mut nudged, &mut fast)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.begin_stopping()?,
            }
            while batch.logs.len() < MAX_BATCH_LINES {
                match self.rx.try_recv() {
                    Ok(m) => self.absorb(m, &mut batch, &mut nudged, &mut fast)?,
                    Err(_) => break,
                }
            }
            // Before looking at data_version, so that no commit falls
            // between that look and the watch being back on.
            self.adjust_watch();
            self.watch_database()?;
            self.plan(&mut batch, nudged, fast);
            if !batch.is_empty() {
                self.commit(batch)?;
            }
            self.load.add_busy(busy.elapsed());
            if let Some(exit) = self.step_stopping()? {
                return Ok(exit);
            }
        }
    }

    fn accepting(&self) -> bool {
        matches!(self.mode, Mode::Accepting)
    }

    fn free_slots(&self) -> usize {
        (self.concurrency + self.prefetch).saturating_sub(self.in_flight.len())
    }

    fn next_wait(&self) -> Duration {
        let looking = self.accepting() && self.free_slots() > 0;
        let mut wait = if looking && self.recheck.is_on() {
            // The wake-up came as the other process wrote its commit; it
            // becomes visible as soon as that commit's fsync returns.
            self.recheck.step()
        } else if looking && !self.watching() {
            self.timing.idle_poll
        } else {
            self.timing.busy_poll
        };
        let hb_due = self
            .timing
            .heartbeat
            .saturating_sub(self.last_heartbeat.elapsed());
        wait = wait.min(hb_due);
        if looking && let Some(due) = self.next_due.wait(Timestamp::now()) {
            wait = wait.min(due);
        }
        if !self.in_flight.is_empty() {
            let p_due = self
                .timing
                .progress_interval
                .saturating_sub(self.last_progress.elapsed());
            wait = wait.min(p_due);
        }
        wait.max(RECHECK_POLL)
    }

    fn absorb(
        &mut self,
        msg: Msg,
        batch: &mut Batch,
        nudged: &mut bool,
        fast: &mut usize,
    ) -> Result<()> {
        match msg {
            Msg::Log(mut line) => {
                // Keep each run's timestamps non-decreasing so that reading
                // "ORDER BY timestamp" gives the order lines were written.
                let last = self
                    .last_log_ts
                    .entry(line.run_id)
                    .or_insert(line.timestamp);
                line.timestamp = line.timestamp.max(*last);
                *last = line.timestamp;
                batch.logs.push(line);
            }
            Msg::Finished(f) => {
                // A limit may have kept queued runs back: room opened.
                if self.limited() {
                    self.queue_maybe_nonempty = true;
                }
                if f.took < SHORT_RUN {
                    *fast += 1;
                }
                match self.finish_record(f) {
                    Some(retry::Ended::Finish(rec)) => batch.finishes.push(rec),
                    Some(retry::Ended::Retry(rec)) => batch.retries.push(rec),
                    None => {}
                }
            }
            Msg::Nudge => *nudged = true,
            Msg::Stop => self.begin_stopping()?,
            Msg::DbChanged => self.recheck.start(),
            Msg::Pgid { run_id, pgid } => batch.pgids.push((run_id, pgid)),
            Msg::Apply(write) => {
                // A job's write is checked like any other connection's.
                store::trusted::with_reference_checks(&mut self.conn, |c| write.apply(c))?;
                // The write may have added runs (the scheduler's do); this
                // connection's own commits do not move its data version.
                self.queue_maybe_nonempty = true;
                self.next_due = NextDue::read(&self.conn)?;
            }
        }
        Ok(())
    }

    /// Moves the worker's row to `state`, with the writer's totals so far:
    /// a stopped worker's row keeps those of its whole life, not of its
    /// last heartbeat.
    fn set_state(&mut self, state: WorkerState) -> Result<bool> {
        let now = Timestamp::now().to_text();
        let (id, load) = (self.me.worker_id, self.load);
        store::write_on(&mut self.conn, "change worker state", |tx| {
            let moved = workers::set_state(tx, id, state, &now)?;
            workers::record_load(tx, id, &load)?;
            Ok(moved)
        })
    }
}
