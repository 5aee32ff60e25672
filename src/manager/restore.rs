//! `jobmgr restore BACKUP`: puts a backup in place of the database, only
//! when nobody uses it, only a sound backup of a schema this binary knows,
//! and keeping the old file beside it. Every check comes before the first
//! change: a refused restore changes nothing.
//!
//! The steps: take the worker's lock file (no worker can start meanwhile),
//! see that no other process has the database open, copy the backup to a
//! private file in the database's directory and check that copy (what is
//! checked is what goes in place), fold the old database's WAL into it and
//! close it (so no `-wal` is left to be replayed onto the restored file),
//! keep the old file as `<db>.before-restore-<time>` (a hard link, so the
//! database's name never points at nothing), rename the copy over the
//! database, sync the directory, and clear the high-water mark in the lock
//! file: the restored file is older than the mark on purpose.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::runner::lock_path;
use crate::store::restore::{self, Contents};

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub database: PathBuf,
    pub backup: PathBuf,
    /// Where the old database is kept (None: there was none).
    pub kept: Option<PathBuf>,
    pub runs: i64,
    pub newest_run_id: i64,
    /// Migrations the next start applies (the backup is older).
    pub migrations_to_apply: Vec<String>,
}

/// Restores `backup` over the database at `db`.
pub fn restore(db: &Path, backup: &Path) -> Result<Restored> {
    check_backup_file(db, backup)?;
    let _lock = take_worker_lock(db)?;
    if restore::open_elsewhere(db)? {
        return Err(Error::Conflict(format!(
            "{} is open in another process (jobmgr serve, a worker, sqlite3 or Litestream?): \
             stop it first; nothing was changed",
            db.display()
        )));
    }
    let dir = directory_of(db);
    let tmp = dir.join(format!(".{}.restore-{}", file_name(db), std::process::id()));
    let outcome = copy_and_check(backup, &tmp).and_then(|c| swap(db, &tmp, c));
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
        for suffix in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(restore::with_suffix(&tmp, suffix));
        }
    }
    let mut restored = outcome?;
    restored.backup = backup.to_path_buf();
    Ok(restored)
}

fn check_backup_file(db: &Path, backup: &Path) -> Result<()> {
    let meta = std::fs::metadata(backup).map_err(|e| {
        Error::Invalid(match e.kind() {
            ErrorKind::NotFound => format!("{}: no such file", backup.display()),
            _ => format!("{}: {e}", backup.display()),
        })
    })?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not a file",
            backup.display()
        )));
    }
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(db), std::fs::canonicalize(backup))
        && a == b
    {
        return Err(Error::Invalid(format!(
            "{} is the database itself",
            backup.display()
        )));
    }
    let wal = restore::with_suffix(backup, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::Invalid(format!(
            "{} has a write-ahead log beside it ({}): it is a live database, not a backup, \
             and its latest commits are in that log; take a backup with `jobmgr backup`",
            backup.display(),
            wal.display()
        )));
    }
    Ok(())
}

/// Holds `<db>.lock` as a worker would, so none starts during the restore.
fn take_worker_lock(db: &Path) -> Result<File> {
    crate::runner::try_lock(db)?.ok_or_else(|| {
        Error::WorkerRunning(format!(
            "a worker is using {} (it holds {}): stop it (`jobmgr worker stop`, or stop \
             jobmgr serve) before restoring; nothing was changed",
            db.display(),
            lock_path(db).display()
        ))
    })
}

fn copy_and_check(backup: &Path, tmp: &Path) -> Result<Contents> {
    restore::copy_private(backup, tmp)?;
    let not_sqlite = |e: Error| match e {
        Error::Db { source, .. } => Error::Invalid(format!(
            "{} is not a usable SQLite database: {source}",
            backup.display()
        )),
        other => other,
    };
    let c = restore::contents(tmp).map_err(not_sqlite)?;
    if !c.problems.is_empty() {
        return Err(Error::Invalid(format!(
            "{} fails SQLite's integrity check: {}",
            backup.display(),
            c.problems.join("; ")
        )));
    }
    if !c.has_history {
        return Err(Error::Invalid(format!(
            "{} is not a jobmgr database (it has no migration history)",
            backup.display()
        )));
    }
    if !c.schema.unknown.is_empty() || !c.schema.changed.is_empty() {
        let mut what = c.schema.unknown.clone();
        what.extend(c.schema.changed.iter().cloned());
        return Err(Error::Invalid(format!(
            "{} was written by a newer or different jobmgr (migrations this binary does not \
             know: {}); restore it with that version",
            backup.display(),
            what.join(", ")
        )));
    }
    Ok(c)
}

fn swap(db: &Path, tmp: &Path, c: Contents) -> Result<Restored> {
    let mut kept = None;
    if db.exists() {
        // Again: checking the copy took a while.
        if restore::open_elsewhere(db)? {
            return Err(Error::Conflict(format!(
                "{} was opened by another process meanwhile: stop it first; nothing was changed",
                db.display()
            )));
        }
        restore::checkpoint_and_close(db)?;
        if restore::with_suffix(db, "-wal").exists() {
            return Err(Error::Conflict(format!(
                "{}-wal is still there after a checkpoint: another process opened the \
                 database meanwhile; nothing was changed",
                db.display()
            )));
        }
        let keep = keep_name(db);
        std::fs::hard_link(db, &keep).map_err(Error::io("keep the old database", &keep))?;
        kept = Some(keep);
    }
    std::fs::rename(tmp, db).map_err(Error::io("put the backup in place", db))?;
    // An index of the old file's WAL must not describe the restored one.
    let _ = std::fs::remove_file(restore::with_suffix(db, "-shm"));
    restore::sync_dir(&directory_of(db))?;
    // The mark describes the old file; the restored one is older on purpose.
    let lock = lock_path(db);
    OpenOptions::new()
        .write(true)
        .open(&lock)
        .and_then(|f| f.set_len(0))
        .map_err(Error::io("clear the high-water mark", &lock))?;
    Ok(Restored {
        database: db.to_path_buf(),
        backup: PathBuf::new(),
        kept,
        runs: c.runs,
        newest_run_id: c.newest_run_id,
        migrations_to_apply: c.schema.missing,
    })
}

/// `<db>.before-restore-20261201T145600Z`, with `-2`, `-3`... when taken.
fn keep_name(db: &Path) -> PathBuf {
    let stamp: String = Timestamp::now()
        .to_text()
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    let base = restore::with_suffix(db, &format!(".before-restore-{stamp}Z"));
    let mut name = base.clone();
    let mut n = 1;
    while name.symlink_metadata().is_ok() {
        n += 1;
        name = restore::with_suffix(&base, &format!("-{n}"));
    }
    name
}

fn directory_of(db: &Path) -> PathBuf {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(db: &Path) -> String {
    db.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "jobmgr.db".into())
}
