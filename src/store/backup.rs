//! Copying the live database for the `backup-database` job: one read
//! transaction for the whole copy, a private temporary file beside the
//! destination, and a final move that never replaces a file.
//!
//! Why one read transaction: SQLite's online backup restarts from page 1
//! whenever another connection commits between two steps, because each
//! step otherwise opens a fresh read transaction and finds the file
//! changed. A busy job commits its progress every 250 ms, so a large file
//! never finished. Held open, the read transaction pins one snapshot (WAL
//! readers never block writers), the steps copy that snapshot, and the
//! progress only moves forward.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Error, Result};

/// Pages copied per step: 16 MiB at the default 4 KiB page, so a cancel is
/// seen within a fraction of a second while the per-step overhead stays
/// negligible.
const STEP_PAGES: i32 = 4096;

/// The files SQLite keeps beside the database `db`, with what each is:
/// the rollback journal, the write-ahead log and its shared-memory index.
pub fn companion_files(db: &Path) -> [(PathBuf, &'static str); 3] {
    let with = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [
        (
            with("-journal"),
            "the database's rollback journal name: SQLite would take a file there for an \
             interrupted transaction, and every connection would wait on it",
        ),
        (
            with("-wal"),
            "the database's write-ahead log, which holds its latest commits",
        ),
        (with("-shm"), "the database's shared-memory index"),
    ]
}

/// Copies the database at `db` to `dest` (see [`backup_to`]) on a
/// connection of its own that refuses writes: the copy is one read
/// transaction and never takes the write lock.
pub fn backup_database(
    db: &Path,
    dest: &Path,
    progress: impl FnMut(i64, i64),
    keep_going: impl Fn() -> bool,
) -> Result<i64> {
    let mut src = super::open_connection(db)?;
    src.pragma_update(None, "query_only", true)
        .map_err(Error::db("open backup source"))?;
    backup_to(&mut src, dest, progress, keep_going)
}

/// Copies the database behind `src` to `dest`, which must not exist,
/// calling `progress(done, total)` in pages after each step; `keep_going`
/// returning false aborts with [`Error::Conflict`]. The copy is written to
/// a new file of mode 0600 in `dest`'s directory, synced, and moved to
/// `dest` only if nothing appeared there meanwhile; on any failure or
/// cancel it is removed and `dest` is left as it is. Returns the pages
/// copied.
pub fn backup_to(
    src: &mut Connection,
    dest: &Path,
    progress: impl FnMut(i64, i64),
    keep_going: impl Fn() -> bool,
) -> Result<i64> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = TempFile::create(dir, dest)?;
    let pages = copy_pages(src, &tmp.path, progress, keep_going)?;
    tmp.file
        .sync_all()
        .map_err(Error::io("sync backup", &tmp.path))?;
    move_no_replace(&tmp.path, dest).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            Error::Conflict(format!(
                "{} was created while the backup ran; it was left as it is and the copy discarded",
                dest.display()
            ))
        } else {
            Error::io("move backup into place", dest)(e)
        }
    })?;
    tmp.keep();
    // The new name is durable only once the directory is synced too.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync directory", dir))?;
    Ok(pages)
}

/// Runs SQLite's online backup from `src` into the empty file `tmp`
/// inside one read transaction on `src`.
fn copy_pages(
    src: &mut Connection,
    tmp: &Path,
    mut progress: impl FnMut(i64, i64),
    keep_going: impl Fn() -> bool,
) -> Result<i64> {
    let open_err = |e: rusqlite::Error| Error::Open {
        path: tmp.to_path_buf(),
        message: e.to_string(),
    };
    // No CREATE: the file is the one made above, never a new one by name.
    let mut dst = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    // The copy is discarded unless complete, then synced as a whole: a
    // journal beside it and a sync per step would only cost time.
    dst.pragma_update(None, "journal_mode", "OFF")
        .and_then(|()| dst.pragma_update(None, "synchronous", "OFF"))
        .map_err(open_err)?;
    // DEFERRED: the connection's default (IMMEDIATE) would take the write
    // lock. The first read below starts the snapshot every step copies.
    let tx = src
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(Error::db("start backup"))?;
    tx.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(Error::db("start backup"))?;
    let backup = Backup::new(&tx, &mut dst).map_err(Error::db("start backup"))?;
    loop {
        if !keep_going() {
            return Err(Error::Conflict("backup cancelled".into()));
        }
        let step = backup.step(STEP_PAGES).map_err(Error::db("copy pages"))?;
        let p = backup.progress();
        let total = i64::from(p.pagecount);
        progress(total - i64::from(p.remaining), total);
        match step {
            StepResult::Done => return Ok(total),
            StepResult::More => {}
            // Only the destination could be locked (the source holds its
            // snapshot), and nothing else knows that file: wait briefly.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The copy in progress: created exclusively with mode 0600, and removed
/// on drop unless [`TempFile::keep`] says it was moved into place.
struct TempFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

impl TempFile {
    fn create(dir: &Path, dest: &Path) -> Result<TempFile> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = dest.file_name().unwrap_or(dest.as_os_str());
        let mut tries = 0;
        loop {
            let mut file_name = OsString::from(".");
            file_name.push(name);
            file_name.push(format!(
                ".{}-{}.backup-tmp",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let path = dir.join(file_name);
            // create_new is O_CREAT|O_EXCL: a planted file or symlink by
            // that name is never opened, let alone removed.
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 8 => tries += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(Error::Invalid(format!(
                        "directory {} does not exist",
                        dir.display()
                    )));
                }
                Err(e) => return Err(Error::io("create backup file", &path)(e)),
            }
        }
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and
/// neither file changes). Where the file system cannot rename that way,
/// a hard link does the same check; the source name is then removed.
pub fn move_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    match rename_noreplace(from, to) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "path holds a NUL byte"))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both pointers are NUL-terminated strings that outlive the
    // call; renameat2 only reads them. std has no rename that refuses to
    // replace.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TestFile;

    #[test]
    fn move_refuses_a_destination_that_exists() {
        let t = TestFile::new("backup-move");
        let dir = t.db().parent().unwrap().to_path_buf();
        let (from, to) = (dir.join("copy.tmp"), dir.join("copy.db"));
        std::fs::write(&from, b"copy").unwrap();
        std::fs::write(&to, b"appeared meanwhile").unwrap();
        let e = move_no_replace(&from, &to).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&to).unwrap(), b"appeared meanwhile");
        assert_eq!(std::fs::read(&from).unwrap(), b"copy");

        std::fs::remove_file(&to).unwrap();
        move_no_replace(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"copy");
        assert!(!from.exists());
    }

    /// A source database with a little data, and the directory it is in.
    fn source(t: &TestFile) -> (Connection, PathBuf) {
        let conn = crate::store::open_connection(&t.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (b BLOB); \
             INSERT INTO t SELECT zeroblob(10000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3);",
        )
        .unwrap();
        (conn, t.db().parent().unwrap().to_path_buf())
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("backup-tmp"))
            .collect()
    }

    #[test]
    fn a_destination_created_during_the_copy_is_not_replaced() {
        let t = TestFile::new("backup-race");
        let (mut src, dir) = source(&t);
        let dest = dir.join("copy.db");
        // Someone creates the destination once the last page is copied,
        // after the job's check that it did not exist.
        let e = backup_to(
            &mut src,
            &dest,
            |done, total| {
                if done == total {
                    std::fs::write(&dest, b"not a backup").unwrap();
                }
            },
            || true,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} was created while the backup ran; it was left as it is and the copy discarded",
                dest.display()
            )
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"not a backup");
        assert_eq!(leftovers(&dir), Vec::<String>::new());
    }

    #[test]
    fn a_cancelled_copy_leaves_nothing_and_a_finished_one_is_private() {
        let t = TestFile::new("backup-cancel");
        let (mut src, dir) = source(&t);
        let dest = dir.join("copy.db");
        let e = backup_to(&mut src, &dest, |_, _| {}, || false).unwrap_err();
        assert_eq!(e.to_string(), "backup cancelled");
        assert!(!dest.exists());
        assert_eq!(leftovers(&dir), Vec::<String>::new());

        let pages = backup_to(&mut src, &dest, |_, _| {}, || true).unwrap();
        assert!(pages > 3, "{pages}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let copy = Connection::open(&dest).unwrap();
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(leftovers(&dir), Vec::<String>::new());
    }

    #[test]
    fn move_refuses_a_dangling_symlink_too() {
        let t = TestFile::new("backup-move-link");
        let dir = t.db().parent().unwrap().to_path_buf();
        let (from, to) = (dir.join("copy.tmp"), dir.join("copy.db"));
        std::fs::write(&from, b"copy").unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), &to).unwrap();
        let e = move_no_replace(&from, &to).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert!(!dir.join("nowhere").exists());
    }
}
