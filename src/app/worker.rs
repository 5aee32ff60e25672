//! Start-up and shutdown of `jobmgr worker`: takes the lock file, checks
//! the high-water mark, registers, starts the checkpointer that takes the
//! writer's checkpoints (stopped right after the writer's last commit),
//! then starts in this order the executor
//! threads, the signal thread, the wake watcher, the scheduler, the
//! housekeeping thread (disk guard and retention under one ticker), the
//! notify thread (when the config file has notifiers) and the writer; the
//! writer thread, when it ends, stops the scheduler, the watcher, the
//! housekeeping and the notify thread and joins them and the executors, before it
//! lets go of the lock file, and
//! [`RunningWorker::wait`] joins it and the signal thread.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{RecvTimeoutError, Sender, bounded, unbounded};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::checkpointer::Checkpointer;
use crate::clock::Timestamp;
use crate::config::Retention;
use crate::error::{Error, Result};
use crate::maintenance::tasks::worker_tasks;
use crate::maintenance::ticker::{Tick, Ticker};
use crate::registry::Registry;
use crate::runner::{
    Exit, WRITER_QUEUE, WorkerOptions, acquire_lock, check_mark, executor, lock_path, mark,
    register, wake, writer,
};
use crate::schedule::scheduler::SchedulerThread;
use crate::store::{self, Store};

/// A worker started in this process.
pub struct RunningWorker {
    tx: crossbeam_channel::Sender<writer::Msg>,
    thread: thread::JoinHandle<Result<Exit>>,
    signals: Option<(signal_hook::iterator::Handle, thread::JoinHandle<()>)>,
}

impl RunningWorker {
    /// Begins a graceful stop, as SIGTERM would.
    pub fn stop(&self) {
        let _ = self.tx.send(writer::Msg::Stop);
    }

    /// Waits until the worker has stopped.
    pub fn wait(self) -> Result<Exit> {
        let exit = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the writer thread panicked".into())));
        if let Some((handle, t)) = self.signals {
            handle.close();
            let _ = t.join();
        }
        exit
    }
}

/// Runs the worker until it stops (SIGTERM/SIGINT or a stop request).
pub fn run_worker(opts: &WorkerOptions, registry: Arc<Registry>) -> Result<Exit> {
    start_worker(opts, registry, true)?.wait()
}

/// Takes the lock, registers, and starts the executor and writer threads.
/// With `signals`, SIGTERM and SIGINT begin a graceful stop.
pub fn start_worker(
    opts: &WorkerOptions,
    registry: Arc<Registry>,
    signals: bool,
) -> Result<RunningWorker> {
    let store = Store::open(&opts.db)?;
    let lock = acquire_lock(&opts.db, &store)?;
    let floor = check_mark(&store, &opts.db)?;
    let me = register(&store, &registry, opts)?;
    let worker_id = me.worker_id;
    let mark = lock
        .try_clone()
        .map(|f| mark::MarkFile::new(f, floor, worker_id))
        .map_err(Error::io("open lock file", lock_path(&opts.db)))?;
    let conn = store::open_writer_connection(&opts.db)?;
    // Its group commits write only rows whose references they fenced.
    store::trusted::trust_references(&conn)?;
    // Its commits leave the checkpoints to this thread (stopped after the
    // writer's last commit, in the writer thread below).
    let checkpointer = Checkpointer::start(&opts.db)?;
    let follower = checkpointer.nudge().follow(&conn)?;
    // What jobs read through: connections that refuse writes, so that the
    // writer stays the process's only writer.
    let readers = Store::open_readers(&opts.db)?;

    let (tx, rx) = bounded(WRITER_QUEUE);
    let (dtx, drx) = unbounded();
    let mut executors = Vec::with_capacity(opts.concurrency);
    for i in 0..opts.concurrency {
        let (drx, tx, registry, store) =
            (drx.clone(), tx.clone(), registry.clone(), readers.clone());
        let handle = thread::Builder::new()
            .name(format!("executor-{i}"))
            .spawn(move || executor::executor_loop(drx, tx, registry, store))
            .map_err(Error::io("spawn executor", &opts.db))?;
        executors.push(handle);
    }
    let received = Arc::new(AtomicUsize::new(0));
    let signals = if signals {
        Some(spawn_signal_thread(tx.clone(), received.clone(), &opts.db)?)
    } else {
        None
    };
    let (watcher, switch) = wake::watch(&opts.db, &lock_path(&opts.db), tx.clone()).unzip();
    let registry_for_scheduler = registry.clone();
    let notifiers = registry.notifiers().to_vec();
    let registry_for_notify = registry.clone();
    let writer = writer::Writer::new(
        conn,
        me,
        rx,
        (dtx, drx),
        registry,
        opts.timing.clone(),
        opts.concurrency,
    )?
    .with_watcher(switch)
    .with_signals(received)
    .with_mark(mark)
    .with_checkpoints(follower);
    // Last, so that everything it writes through is running; stopped as
    // soon as the writer is done, before the executors are joined.
    let scheduler = SchedulerThread::start(readers, registry_for_scheduler, tx.clone())?;
    let housekeeping = match &opts.retention {
        Some(r) => Some(spawn_housekeeping(opts, r, worker_id, &notifiers)?),
        None => None,
    };
    // The notify thread: the scan for events and the outbox's delivery,
    // on a connection of its own; only when the file has notifiers.
    let notify = match notifiers.is_empty() {
        true => None,
        false => {
            let (stop, stop_rx) = bounded::<()>(0);
            let t = crate::notify::deliver::spawn(opts.db.clone(), &registry_for_notify, stop_rx)?;
            Some((stop, t))
        }
    };
    let thread = thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            // The lock file stays held until the writer is done.
            let _lock = lock;
            let exit = writer.run();
            // The writer has made its last commit: the last checkpoint.
            checkpointer.stop();
            scheduler.stop();
            if let Some(w) = watcher {
                w.stop();
            }
            if let Some((stop, t)) = housekeeping {
                drop(stop);
                let _ = t.join();
            }
            if let Some((stop, t)) = notify {
                drop(stop);
                let _ = t.join();
            }
            finish(exit, executors)
        })
        .map_err(Error::io("spawn writer", &opts.db))?;
    Ok(RunningWorker {
        tx,
        thread,
        signals,
    })
}

/// Starts the housekeeping ticker: one tick at once (retention at worker
/// start), then every `housekeeping_every`. Dropping the returned sender
/// stops it, between two of retention's transactions at the latest. It
/// ticks with its own loop rather than [`Ticker::run`]: that one takes a
/// late tick for a paused process, and a long retention pass is only
/// long; no task here declares anyone dead, so nothing needs holding back.
fn spawn_housekeeping(
    opts: &WorkerOptions,
    retention: &Retention,
    worker_id: i64,
    notifiers: &[crate::notify::Notifier],
) -> Result<(Sender<()>, thread::JoinHandle<()>)> {
    let (stop, stop_rx) = bounded::<()>(0);
    let tasks = worker_tasks(&opts.db, retention, worker_id, stop_rx.clone(), notifiers);
    let every = opts.housekeeping_every;
    let mut ticker = Ticker::new(every, opts.timing.write_retry_for, tasks);
    let t = thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            loop {
                ticker.tick_once(&Tick {
                    now: Timestamp::now(),
                    hold: false,
                });
                match stop_rx.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .map_err(Error::io("spawn housekeeping thread", &opts.db))?;
    Ok((stop, t))
}

fn spawn_signal_thread(
    tx: crossbeam_channel::Sender<writer::Msg>,
    received: Arc<AtomicUsize>,
    db: &Path,
) -> Result<(signal_hook::iterator::Handle, thread::JoinHandle<()>)> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(Error::io("install signal handlers", db))?;
    let handle = signals.handle();
    let t = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                log::info!("received signal {sig}");
                received.fetch_add(1, Ordering::SeqCst);
                if tx.send(writer::Msg::Stop).is_err() {
                    return;
                }
            }
        })
        .map_err(Error::io("spawn signal thread", db))?;
    Ok((handle, t))
}

fn finish(exit: Result<Exit>, executors: Vec<thread::JoinHandle<()>>) -> Result<Exit> {
    match exit {
        Ok(Exit::Drained) => {
            // The writer dropped the dispatch channel: idle executors end.
            for h in executors {
                let _ = h.join();
            }
            log::info!("worker stopped");
            Ok(Exit::Drained)
        }
        Ok(Exit::Abandoned) => {
            // Executors still inside a job that ignored its cancel cannot
            // be joined; their runs are recorded and the process exits.
            log::warn!("worker stopped; jobs that ignored cancellation were abandoned");
            // Their runs are recorded as interrupted, so no later recovery
            // would look for their programs: kill those groups now.
            crate::command::kill_live_groups();
            Ok(Exit::Abandoned)
        }
        Err(e) => {
            crate::command::kill_live_groups();
            Err(e)
        }
    }
}
