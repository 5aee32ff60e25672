//! The worker process: takes the lock file, registers the one active
//! Worker row (recovering what a dead predecessor left RUNNING), then runs
//! executor threads and the writer thread until it is told to stop.

/// The job API, under its old path too.
pub use crate::context;
pub mod executor;
pub mod mark;
mod wake;
pub mod writer;

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{bounded, unbounded};
use serde_json::Map;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::maintenance;
use crate::registry::Registry;
use crate::store::batch::Claimant;
use crate::store::{self, Store, workers};
use crate::worker::{self, WorkerRow};
pub use writer::{Exit, Timing};

/// How many messages may wait for the writer before jobs are slowed down.
const WRITER_QUEUE: usize = 8_192;

/// What `jobmgr worker` needs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub db: PathBuf,
    pub concurrency: usize,
    pub timing: Timing,
}

/// The lock file beside the database: held for the worker's whole life.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the OS lock that proves this is the only worker process. On
/// failure the error names the worker that holds it.
pub fn acquire_lock(db: &Path, store: &Store) -> Result<File> {
    let path = lock_path(db);
    // 0600 like the database: the lock is this user's business only.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(Error::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            let active = workers::active_worker(&*store.conn()?)?;
            Err(Error::WorkerRunning(describe_holder(
                active.as_ref(),
                &path,
            )))
        }
        Err(TryLockError::Error(e)) => Err(Error::io("lock", &path)(e)),
    }
}

fn describe_holder(active: Option<&WorkerRow>, path: &Path) -> String {
    match active {
        Some(w) => format!(
            "another worker is already running: {}",
            w.describe(Timestamp::now())
        ),
        None => format!("another worker is starting (it holds {})", path.display()),
    }
}

/// A worker started in this process.
pub struct RunningWorker {
    tx: crossbeam_channel::Sender<writer::Msg>,
    thread: thread::JoinHandle<Result<Exit>>,
    signals: Option<(signal_hook::iterator::Handle, thread::JoinHandle<()>)>,
    /// The registered worker's id.
    pub worker_id: i64,
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
            .unwrap_or_else(|_| Err(Error::Conflict("the writer thread panicked".into())));
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

    // What jobs read through: connections that refuse writes, so that the
    // writer below stays the process's only writer.
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
    .with_mark(mark);
    let thread = thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            // The lock file stays held until the writer is done.
            let _lock = lock;
            let exit = writer.run();
            if let Some(w) = watcher {
                w.stop();
            }
            finish(exit, executors)
        })
        .map_err(Error::io("spawn writer", &opts.db))?;
    Ok(RunningWorker {
        tx,
        thread,
        signals,
        worker_id,
    })
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

/// With the lock held (no other worker writes the mark): compares the
/// high-water mark with the database and says loudly when the database is
/// behind it. Returns the mark, which the new one starts from.
fn check_mark(store: &Store, db: &Path) -> Result<Option<mark::Mark>> {
    let c = mark::compare(&*store.conn()?, &lock_path(db))?;
    if c.behind() {
        log::error!("{}: {c}", db.display());
    }
    Ok(c.mark)
}

/// Registration: one transaction that declares any previous active worker
/// dead (the lock proves its process is gone), resolves its runs, and
/// inserts this worker.
fn register(store: &Store, registry: &Registry, opts: &WorkerOptions) -> Result<Claimant> {
    let hostname = worker::hostname();
    let pid = std::process::id() as i64;
    let now = Timestamp::now();
    let mut meta = Map::new();
    meta.insert("db".into(), opts.db.display().to_string().into());
    let (row, recovery) = store.write("register worker", |tx| {
        let recovery = maintenance::take_over(tx, registry, now)?;
        let new = workers::NewWorker {
            hostname: &hostname,
            pid,
            version: worker::VERSION,
            concurrency: opts.concurrency as i64,
            metadata: &meta,
        };
        let row = workers::insert_worker(tx, &new, &now.to_text())?;
        Ok((row, recovery))
    })?;
    for w in &recovery.dead_workers {
        log::warn!("previous worker declared dead: {}", w.describe(now));
    }
    for r in &recovery.runs {
        log::warn!("run {} ({}) → {}: {}", r.id, r.job_name, r.status, r.error);
    }
    log::info!(
        "registered worker {} (pid {pid} on {hostname}, version {}, concurrency {})",
        row.id,
        worker::VERSION,
        opts.concurrency
    );
    Ok(Claimant { worker_id: row.id })
}
