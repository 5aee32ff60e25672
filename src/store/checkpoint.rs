//! The SQLite side of checkpointing off the write paths: a bulk writer's
//! connection hands its checkpoints over (SQLite's automatic checkpoint
//! off, a WAL hook that notes the WAL's length after each commit), and the
//! one kind of checkpoint jobmgr's long-running processes run, PASSIVE,
//! and how many WAL frames one copied. Who checkpoints when is
//! [`crate::checkpointer`]'s.

use std::cell::Cell;
use std::ffi::c_int;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use crate::error::{Error, Result};

thread_local! {
    /// The WAL's frames after the last commit this thread made on a
    /// handed-over connection. A thread-local, because SQLite's WAL hook
    /// runs on the committing thread, inside its commit, and rusqlite's
    /// hook is a plain `fn` that can carry no state: the thread reads it
    /// right after its commit returns.
    static FRAMES: Cell<Option<u32>> = const { Cell::new(None) };
}

fn note_frames(_wal: &Wal, frames: c_int) -> rusqlite::Result<()> {
    FRAMES.set(Some(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// Turns SQLite's automatic checkpoint off on `conn` and notes the WAL's
/// length after each of its commits instead (see [`frames_after_commit`]):
/// the connection's commits then never copy pages to the database file or
/// sync it. Only for the connections whose commits a checkpointer follows.
pub fn hand_over(conn: &Connection) -> Result<()> {
    // The pragma installs SQLite's own hook (or none, with 0); the hook set
    // after it replaces that, so the order matters.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(Error::db("turn the automatic checkpoint off"))?;
    conn.wal_hook(Some(note_frames));
    Ok(())
}

/// The WAL's frames after the last commit this thread made on a
/// handed-over connection, once (None when it made none since the last
/// call).
pub fn frames_after_commit() -> Option<u32> {
    FRAMES.take()
}

/// What a passive checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passive {
    /// Another checkpoint was running (this one did nothing).
    pub busy: bool,
    /// Frames in the WAL.
    pub log: u32,
    /// Frames of it now in the database file.
    pub checkpointed: u32,
}

/// A PASSIVE checkpoint on `conn`: copies to the database file the frames
/// no reader still needs, syncs it, and waits for no one (a reader on an
/// old snapshot, such as Litestream's, keeps the frames after its own;
/// they are copied by a later checkpoint). Never restarts or truncates the
/// WAL itself: the next commit does, once every frame is copied and no
/// reader is left on the WAL.
pub fn passive(conn: &Connection) -> Result<Passive> {
    let (busy, log, checkpointed): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(Error::db("checkpoint"))?;
    // Another connection's checkpoint holding the lock gives -1 for both.
    let frames = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    Ok(Passive {
        busy: busy != 0 || log < 0,
        log: frames(log),
        checkpointed: frames(checkpointed),
    })
}

/// Where `nBackfill`, the frames of the WAL already in the database file,
/// sits in the wal-index (the `-shm` file): after the two 48-byte copies of
/// its header, the first field of the checkpoint information, in the
/// machine's byte order (SQLite's file format, "WAL-index format").
const BACKFILL_AT: u64 = 96;

/// The wal-index of one database, read to learn how many frames a
/// checkpoint copied: its result gives only the total now in the database
/// file, which counts the frames another process's checkpoint (the
/// worker's, beside `serve`'s) copied since this process last looked.
pub struct WalIndex {
    path: PathBuf,
    /// Opened at the first checkpoint: it exists while any connection is
    /// open, which a checkpoint's own connection is.
    file: OnceLock<File>,
}

impl WalIndex {
    /// The wal-index of the database at `db`.
    pub fn of(db: &Path) -> WalIndex {
        let mut path = db.as_os_str().to_owned();
        path.push("-shm");
        WalIndex {
            path: path.into(),
            file: OnceLock::new(),
        }
    }

    /// `nBackfill` now; None when the file cannot be read.
    fn backfilled(&self) -> Option<u32> {
        let file = match self.file.get() {
            Some(f) => f,
            None => {
                let f = File::open(&self.path).ok()?;
                self.file.get_or_init(|| f)
            }
        };
        let mut b = [0u8; 4];
        file.read_exact_at(&mut b, BACKFILL_AT).ok()?;
        Some(u32::from_ne_bytes(b))
    }
}

/// A [`passive`] checkpoint, and the frames it copied: those in the
/// database file after it that were not just before it (0 when it was
/// busy, or the wal-index could not be read). One read of the wal-index
/// more than the checkpoint, which itself syncs the database file.
pub fn passive_copied(conn: &Connection, index: &WalIndex) -> Result<(Passive, u32)> {
    let before = index.backfilled();
    let p = passive(conn)?;
    let copied = match before {
        _ if p.busy => 0,
        None => 0,
        Some(b) if b <= p.checkpointed => p.checkpointed - b,
        // The WAL started over between the read and the checkpoint: every
        // frame in it was copied since.
        Some(_) => p.checkpointed,
    };
    Ok((p, copied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{TestFile, open_connection};

    fn grow(conn: &Connection, rows: i64) {
        conn.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO t SELECT zeroblob(3000) FROM k",
            [rows],
        )
        .unwrap();
    }

    #[test]
    fn a_handed_over_connection_never_checkpoints_in_its_commits() {
        let file = TestFile::new("checkpoint-hand-over");
        let conn = open_connection(&file.db()).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        hand_over(&conn).unwrap();
        frames_after_commit();
        // About 1,500 pages in one commit: SQLite's default would have
        // checkpointed it at once.
        grow(&conn, 1500);
        let frames = frames_after_commit().expect("the hook saw the commit");
        assert!(frames > 1000, "{frames} frames");
        assert_eq!(frames_after_commit(), None, "read once");
        // Nothing was copied inside the commit (`nBackfill`, at byte 96 of
        // the wal-index, is still 0); a passive checkpoint on another
        // connection copies it all.
        let mut shm = file.db().into_os_string();
        shm.push("-shm");
        let shm = std::fs::read(shm).unwrap();
        assert_eq!(u32::from_ne_bytes(shm[96..100].try_into().unwrap()), 0);
        let other = open_connection(&file.db()).unwrap();
        let index = WalIndex::of(&file.db());
        let (p, copied) = passive_copied(&other, &index).unwrap();
        assert!(!p.busy);
        assert_eq!(p.log, frames);
        assert_eq!(p.checkpointed, frames);
        assert_eq!(copied, frames, "all of it copied by this checkpoint");
        // Nothing new: the next one copies nothing, though the checkpoint's
        // own result still says every frame is in the database file.
        let (again, copied) = passive_copied(&other, &index).unwrap();
        assert_eq!((again.checkpointed, copied), (frames, 0));
        // The next commit starts the WAL over; only its frames are copied.
        grow(&conn, 10);
        let (p, copied) = passive_copied(&other, &index).unwrap();
        assert!(p.log < frames && p.log > 0, "{} frames", p.log);
        assert_eq!(copied, p.log);
    }
}
