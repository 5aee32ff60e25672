//! The storage layer: the only module that speaks SQL. It opens the SQLite
//! file (WAL, `synchronous=FULL`, foreign keys, a busy timeout on every
//! connection), applies the migrations, and offers one function per query,
//! named by intent.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

pub mod arms;
pub mod attempts;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod bench;
pub mod bulk;
pub mod bulk_actions;
mod busy;
pub mod changes;
pub mod check;
pub mod checkpoint;
pub mod committer;
mod counts;
pub mod deps;
pub mod due;
pub mod failures;
pub mod history;
pub mod housekeeping;
pub mod insight;
pub mod logs;
pub mod media;
pub mod minutes;
mod multirow;
pub mod notify;
mod orphans;
pub mod pauses;
mod pool;
pub mod restore;
pub mod retention;
pub mod rows;
pub mod runs;
pub mod schedule_edits;
pub mod schedules;
pub mod stats;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::TestFile;
#[cfg(test)]
mod transitions;
pub mod trusted;
pub mod unique;
#[cfg(test)]
mod upgrade_tests;
pub mod usual;
#[allow(unsafe_code)]
mod vfs;
pub mod workers;

/// The handles other modules pass back into this one (the worker's writer
/// keeps a connection; recovery runs inside a registration transaction),
/// so that no module outside the storage layer depends on rusqlite.
pub use rusqlite::{Connection, Transaction};

mod migrate;

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Transactions this process committed for the worker's batches and for
/// acknowledged enqueues: `jobmgr bench` reports runs per commit, the first
/// figure to look at when a disk is slow.
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// How many batch and enqueue transactions this process has committed.
pub fn commits() -> u64 {
    COMMITS.load(Ordering::Relaxed)
}

/// Bytes this process has written to WAL files (frames and their
/// headers), counted by the VFS layer.
pub fn wal_bytes() -> u64 {
    vfs::wal_bytes()
}

fn count_commit() {
    COMMITS.fetch_add(1, Ordering::Relaxed);
}

/// A pooled connection.
pub type Conn = PooledConnection<pool::Connections>;

/// The database: a pool of configured connections to one file.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<pool::Connections>,
    path: PathBuf,
}

/// Sets the pragmas every connection needs. `synchronous=FULL` makes each
/// acknowledged commit survive power loss; speed comes from batching.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    busy::install(conn)?;
    // A new file returns the pages retention frees to the file system
    // (`PRAGMA incremental_vacuum`). The mode can only be chosen before the
    // first table exists; an older file keeps its mode until a VACUUM.
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals (each insert or update that fires the JobRunCount
    // triggers gets one) stay in memory instead of a temporary file: they
    // only undo one statement and play no part in durability.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    // Without the query planner stability guarantee SQLite plans a bound
    // `LIMIT ?` by its value and re-prepares the statement whenever the
    // parameter is bound again, which rusqlite does on every run: each
    // cached query with a bound limit (the change watcher's, every page of
    // the API) was compiled from scratch each time. Nothing here relies on
    // plans chosen by bound values (no sqlite_stat4, no LIKE on an index).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Opens one configured connection outside the pool (the writer thread and
/// the change watcher keep their own).
pub fn open_connection(path: &Path) -> Result<Connection> {
    vfs::install();
    create_private(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure(&mut conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Creates a missing database file, empty, with mode 0600 before SQLite
/// opens it: SQLite gives the `-wal`, `-shm` and `-journal` files it
/// creates the mode of the database file, so job parameters, logs and the
/// audit trail stay with this user. An empty file is a new database to
/// SQLite. Failures are left to SQLite's own open, which reports them (a
/// missing directory, a read-only file system); a URI or `:memory:` is
/// not a file name.
fn create_private(path: &Path) {
    let text = path.as_os_str().as_encoded_bytes();
    if text.starts_with(b"file:") || text.starts_with(b":memory:") {
        return;
    }
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// Warns, once per process, when the database or its WAL files are open
/// to other users (created by an older jobmgr or another tool): they hold
/// job parameters, logs and the audit trail. The modes are left as they
/// are, since the owner may share them on purpose.
fn warn_if_exposed(path: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exposed: Vec<String> = [path.to_path_buf()]
            .into_iter()
            .chain(["-wal", "-shm"].map(|s| {
                let mut p = path.as_os_str().to_owned();
                p.push(s);
                PathBuf::from(p)
            }))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o077 != 0))
            .map(|p| p.display().to_string())
            .collect();
        if !exposed.is_empty() {
            log::warn!(
                "open to other users: {}; the database holds job parameters, logs and the \
                 audit trail; to keep it private: chmod 600 {}",
                exposed.join(", "),
                exposed.join(" ")
            );
        }
    });
}

fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    let mut message = e.to_string();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        message = format!("directory {} does not exist", parent.display());
    }
    Error::Open {
        path: path.to_path_buf(),
        message,
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let store = Store::open_unmigrated(path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens without applying migrations (for `jobmgr migrate` itself).
    pub fn open_unmigrated(path: &Path) -> Result<Store> {
        // One direct connection first: a bad path or a file that is not a
        // database fails here at once with SQLite's message, instead of the
        // pool retrying until its timeout. It is then the pool's first
        // connection (the migration check reads on it).
        let checked = retry_start_race(locked, || {
            let conn = open_connection(path)?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(|e| open_error(path, e))?;
            Ok(conn)
        })?;
        warn_if_exposed(path);
        let make = SqliteConnectionManager::file(path).with_init(configure);
        Store::pooled(path, pool::Connections::new(make, Some(checked)))
    }

    fn pooled(path: &Path, make: pool::Connections) -> Result<Store> {
        Ok(Store {
            pool: pool::build(path, make)?,
            path: path.to_path_buf(),
        })
    }

    /// A pool on an already migrated database whose connections refuse
    /// every write (`PRAGMA query_only`): what a worker's jobs read through,
    /// so that the worker's writer stays the only connection that writes.
    pub fn open_readers(path: &Path) -> Result<Store> {
        let make = SqliteConnectionManager::file(path).with_init(|c| {
            configure(c)?;
            c.pragma_update(None, "query_only", true)
        });
        Store::pooled(path, pool::Connections::new(make, None))
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection from the pool.
    pub fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|e| Error::Open {
            path: self.path.clone(),
            message: format!("get connection: {e}"),
        })
    }

    /// Runs `f` in one IMMEDIATE transaction and commits it.
    pub fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        write_on(&mut conn, op, f)
    }
}

/// How often opening or migrating is tried when another process starting
/// on the same new file gets in the way.
const START_TRIES: u32 = 12;

/// Runs `f`, again after a short pause while it fails with an error
/// `racing` accepts. Processes that start together on a new file (serve
/// and a worker, several CLIs) get in each other's way: switching a new
/// file to WAL takes a lock SQLite's busy handler does not wait for, and of
/// two processes applying the same migration the second fails (`table
/// already exists`, `no such index`) inside the migration's transaction, so
/// nothing is half-applied. Each try sees what the other process finished;
/// a real error fails every try, and is returned after the last.
fn retry_start_race<T>(racing: fn(&str) -> bool, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 1;
    loop {
        match f() {
            Err(Error::Open { message, .. }) if tries < START_TRIES && racing(&message) => {
                std::thread::sleep(Duration::from_millis(10 * u64::from(tries)));
                tries += 1;
            }
            other => return other,
        }
    }
}

fn locked(message: &str) -> bool {
    message.contains("database is locked")
}

/// Runs `f` in one IMMEDIATE transaction on `conn` and commits it.
pub fn write_on<T>(
    conn: &mut Connection,
    op: &'static str,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::db(op))?;
    let out = f(&tx)?;
    tx.commit().map_err(Error::db(op))?;
    Ok(out)
}

/// The connection of a bulk writer (the worker's writer, the enqueue
/// committer): a larger page cache, because it keeps touching the queue's
/// and the history's index pages as the file grows; and triggers off, the
/// run counters kept by its own statements instead (see [`counts`]).
pub fn open_writer_connection(path: &Path) -> Result<Connection> {
    let conn = open_connection(path)?;
    counts::count_by_hand(&conn)?;
    conn.pragma_update(None, "cache_size", -16_384)
        .map_err(|e| open_error(path, e))?;
    // The batch's statements (one per finish-chunk size among them) must
    // all stay prepared; the default cache of 16 would evict some.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// `PRAGMA data_version`: changes when another connection commits.
pub fn data_version(conn: &Connection) -> Result<i64> {
    // Cached: polled every 200 us while a wake-up's commit is awaited.
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(Error::db("read data version"))
}
