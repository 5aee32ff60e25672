//! The worker process's parts: the lock file, registration of the one
//! active Worker row (recovering what a dead predecessor left RUNNING), the
//! executors and the writer. `app::worker` starts and joins their threads.

pub mod executor;
pub mod mark;
pub(crate) mod wake;
pub mod writer;

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Map;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::maintenance;
use crate::registry::Registry;
use crate::store::batch::Claimant;
use crate::store::{Store, workers};
use crate::worker::{self, WorkerRow};
pub use writer::{Exit, Timing};

/// How many messages may wait for the writer before jobs are slowed down.
pub(crate) const WRITER_QUEUE: usize = 8_192;

/// What `jobmgr worker` needs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub db: PathBuf,
    pub concurrency: usize,
    pub timing: Timing,
    /// Retention and the disk guard, run by the worker's housekeeping
    /// thread; None runs no housekeeping (the benchmarks' workers).
    pub retention: Option<crate::config::Retention>,
    /// How often housekeeping ticks (on real time).
    pub housekeeping_every: std::time::Duration,
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
    match try_lock(db)? {
        Some(file) => Ok(file),
        None => {
            let active = workers::active_worker(&*store.conn()?)?;
            Err(Error::WorkerRunning(describe_holder(
                active.as_ref(),
                &lock_path(db),
            )))
        }
    }
}

/// Takes `<db>.lock` without waiting: the file, or None while another
/// process (a worker, a restore) holds it. Shared by the worker and by
/// `jobmgr restore`, which holds it so that no worker starts meanwhile.
pub(crate) fn try_lock(db: &Path) -> Result<Option<File>> {
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
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
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

/// With the lock held (no other worker writes the mark): compares the
/// high-water mark with the database and says loudly when the database is
/// behind it. Returns the mark, which the new one starts from.
pub(crate) fn check_mark(store: &Store, db: &Path) -> Result<Option<mark::Mark>> {
    let c = mark::compare(&*store.conn()?, &lock_path(db))?;
    if c.behind() {
        log::error!("{}: {c}", db.display());
    }
    Ok(c.mark)
}

/// Registration: one transaction that declares any previous active worker
/// dead (the lock proves its process is gone), resolves its runs, and
/// inserts this worker.
pub(crate) fn register(
    store: &Store,
    registry: &Registry,
    opts: &WorkerOptions,
) -> Result<Claimant> {
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
