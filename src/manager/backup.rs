//! Backups of the live database, for the `backup-database` job and
//! `jobmgr backup`: where a copy may go, and the copy itself (one read
//! transaction, a private temporary file, a move that never replaces).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::Manager;
use crate::context::database_companions;
use crate::error::{Error, Result};
use crate::store::backup;

/// Fails, saying why, when `dest` is no place for a copy of the database
/// `db`: one of the files SQLite or jobmgr keep beside it (see
/// [`reserved`]), or a path that exists already.
pub fn check_backup_destination(db: &Path, dest: &Path) -> Result<()> {
    refuse_reserved(db, dest)?;
    if dest.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists; choose a new path",
            dest.display()
        )));
    }
    Ok(())
}

impl Manager {
    /// Copies the live database to `dest` while jobs run, after the same
    /// checks as the `backup-database` job; returns the pages copied.
    pub fn backup_to(&self, dest: &Path) -> Result<i64> {
        let db = self.store.path();
        check_backup_destination(db, dest)?;
        backup::backup_database(db, dest, |_, _| {}, || true)
    }
}

/// The files a copy must never land on, with what each one is: a copy at
/// `<db>-journal` is taken by SQLite for a hot journal and every new
/// connection waits on it; one at `-wal` or `-shm` corrupts the live
/// state; the lock and token files belong to the worker and the server.
fn reserved(db: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![(db.to_path_buf(), "the live database itself")];
    files.extend(database_companions(db));
    files.push((crate::runner::lock_path(db), "the worker's lock file"));
    files.push((crate::config::token_path(db), "the web server's token file"));
    files
}

/// Fails when `dest` names one of the [`reserved`] files, however it is
/// spelled: both sides are compared with their directories resolved
/// (`.`, `..`, symlinked directories). SQLite keeps its companions beside
/// the database's real file, jobmgr beside the path as given; both count.
fn refuse_reserved(db: &Path, dest: &Path) -> Result<()> {
    let dest_real = resolve(dest).map_err(|e| {
        Error::Invalid(format!(
            "{}: cannot resolve its directory: {e}",
            dest.display()
        ))
    })?;
    for db_form in &resolve(db).unwrap_or_default() {
        for (file, what) in reserved(db_form) {
            if dest_real.contains(&file) {
                return Err(Error::Invalid(format!(
                    "{} is {what}; choose another path",
                    dest.display()
                )));
            }
        }
    }
    Ok(())
}

/// `path` with its directory canonicalised and its last component kept as
/// it is, plus the fully resolved path when `path` itself exists (a
/// symlink to a reserved file).
fn resolve(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut out = vec![std::fs::canonicalize(dir)?.join(name)];
    out.extend(std::fs::canonicalize(path));
    Ok(out)
}
