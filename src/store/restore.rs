//! The file side of `jobmgr restore`: whether any process has the live
//! database open, a private copy of the backup beside it, what that copy
//! holds, and the swap.
//!
//! How "open" is seen: every SQLite connection to a WAL database keeps a
//! shared POSIX lock on the "DMS" byte of its `-shm` file for as long as it
//! is open (that is how the last one to close knows it may delete the WAL),
//! and a reader of a rollback-journal database holds a shared lock on the
//! database file's shared range while it reads. `F_GETLK` asks the kernel
//! whether a write lock there would conflict, without taking one: another
//! process's connection (serve, its worker, `sqlite3`, Litestream) shows.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::check::{self, SchemaReport};
use crate::error::{Error, Result};

/// The DMS byte of the unix VFS's `-shm` file (120 + 8 lock slots).
const SHM_DMS_BYTE: i64 = 128;
/// SQLite's shared-lock range on the database file (PENDING_BYTE + 2, 510
/// bytes).
const SHARED_FIRST: i64 = 0x4000_0000 + 2;
const SHARED_SIZE: i64 = 510;

/// `db` with `suffix` appended to its file name.
pub fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Whether a process other than this one has the database at `db` open.
pub fn open_elsewhere(db: &Path) -> Result<bool> {
    let probe = |path: &Path, start: i64, len: i64| -> Result<bool> {
        match File::open(path) {
            Ok(f) => locked_elsewhere(&f, start, len).map_err(Error::io("probe file locks", path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("probe file locks", path)(e)),
        }
    };
    Ok(probe(&with_suffix(db, "-shm"), SHM_DMS_BYTE, 1)? || probe(db, SHARED_FIRST, SHARED_SIZE)?)
}

/// `fcntl(F_GETLK)`: std cannot ask whether a POSIX lock is held.
#[allow(unsafe_code)]
fn locked_elsewhere(f: &File, start: i64, len: i64) -> io::Result<bool> {
    // SAFETY: an all-zero flock is a valid value of this plain C struct;
    // F_GETLK reads and writes only the struct it is given, which lives
    // across the call, and the descriptor is borrowed from `f`.
    let (rc, lock) = unsafe {
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = start as libc::off_t;
        lock.l_len = len as libc::off_t;
        let rc = libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut lock);
        (rc, lock)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i32::from(lock.l_type) != libc::F_UNLCK)
}

/// What a backup holds, read from the private copy.
#[derive(Debug)]
pub struct Contents {
    /// What `integrity_check` found wrong (empty: sound).
    pub problems: Vec<String>,
    pub schema: SchemaReport,
    /// Whether it has refinery's history at all (a jobmgr database).
    pub has_history: bool,
    pub runs: i64,
    pub newest_run_id: i64,
}

/// Copies `backup` to `tmp` (new, mode 0600) and syncs it.
pub fn copy_private(backup: &Path, tmp: &Path) -> Result<()> {
    let mut from = File::open(backup).map_err(Error::io("open backup", backup))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(Error::io("create temporary copy", tmp))?;
    io::copy(&mut from, &mut to).map_err(Error::io("copy backup", tmp))?;
    to.sync_all().map_err(Error::io("sync temporary copy", tmp))
}

/// Reads what the copy at `path` holds. A file that is not a SQLite
/// database fails here, with SQLite's words.
pub fn contents(path: &Path) -> Result<Contents> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(Error::db("open backup"))?;
    let problems = check::integrity(&conn)?;
    let has_history: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' \
             AND name = 'refinery_schema_history'",
            [],
            |r| r.get(0),
        )
        .map_err(Error::db("read backup schema"))?;
    let schema = check::schema(&conn)?;
    let (_, newest_run_id) = check::newest_ids(&conn)?;
    let runs = if newest_run_id > 0 {
        conn.query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
            .map_err(Error::db("count backup runs"))?
    } else {
        0
    };
    conn.close()
        .map_err(|(_, e)| Error::db("close backup")(e))?;
    Ok(Contents {
        problems,
        schema,
        has_history,
        runs,
        newest_run_id,
    })
}

/// Folds the live database's WAL into the file and closes it, so that no
/// `-wal` is left beside it: with no other connection open, the last close
/// deletes the WAL and its `-shm`.
pub fn checkpoint_and_close(db: &Path) -> Result<()> {
    let conn = super::open_connection(db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(Error::db("checkpoint the database"))?;
    conn.close()
        .map_err(|(_, e)| Error::db("close the database")(e))
}

/// Syncs the directory `dir`, so that renames in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync directory", dir))
}
