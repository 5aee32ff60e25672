//! The high-water mark: what the worker last saw committed, kept outside
//! the database, in the lock file `<db>.lock` the worker holds for its whole
//! life. SQLite cannot tell a WAL it ignores from one that never was: after
//! a kill -9, a damaged `-wal` header makes it drop every commit since the
//! last checkpoint without a word. The mark can: if the database holds no
//! worker as new as the mark's, or no run as new, transactions were lost.
//!
//! The mark only ever records what a committed transaction wrote (the
//! worker's own registration, the runs it claimed), so a healthy database
//! is never behind it; runs enqueued by other processes do not raise it.
//! It is rewritten in place after each group commit, without fsync: it only
//! has to survive the process, and a mark that is behind is harmless. It
//! never goes down: after a loss it keeps its values, and every start and
//! `jobmgr status` say so, until the database has caught up or the lock
//! file is removed (with no worker running) to accept the loss.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::store::{Connection, check};

/// What a worker saw committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    /// The newest registered worker's id.
    pub worker_id: i64,
    /// The newest run id a worker claimed.
    pub run_id: i64,
    /// Group commits recorded in this lock file so far.
    pub commits: u64,
}

const PREFIX: &str = "jobmgr high-water mark:";
/// Every field has a fixed width, so each rewrite covers the last one
/// exactly and the file never needs truncating.
const LEN: usize = PREFIX.len() + " worker  run  commits \n".len() + 3 * 20;

impl Mark {
    fn encode(&self, buf: &mut Vec<u8>) {
        buf.clear();
        // Writing into a Vec cannot fail.
        let _ = writeln!(
            buf,
            "{PREFIX} worker {:020} run {:020} commits {:020}",
            self.worker_id, self.run_id, self.commits
        );
        debug_assert_eq!(buf.len(), LEN);
    }

    fn decode(bytes: &[u8]) -> Option<Mark> {
        let text = std::str::from_utf8(bytes.get(..LEN)?).ok()?;
        let rest = text.strip_prefix(PREFIX)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        match f.as_slice() {
            ["worker", w, "run", r, "commits", c] => Some(Mark {
                worker_id: w.parse().ok()?,
                run_id: r.parse().ok()?,
                commits: c.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// Reads the mark in the lock file at `path`; None when there is none (no
/// file yet, an empty one, or one no worker of this version wrote).
pub fn read(path: &Path) -> Option<Mark> {
    let file = File::open(path).ok()?;
    let read_once = || {
        let mut buf = [0u8; LEN];
        file.read_exact_at(&mut buf, 0).ok()?;
        Mark::decode(&buf)
    };
    // The worker may be rewriting it: two reads that agree are whole.
    let mut last = read_once();
    for _ in 0..4 {
        let again = read_once();
        if again == last {
            return last;
        }
        last = again;
    }
    None
}

/// The mark against the database: behind when the database lacks the
/// mark's newest worker or its newest run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub mark: Option<Mark>,
    pub db_worker_id: i64,
    pub db_run_id: i64,
}

impl Comparison {
    /// Whether commits the mark saw are missing from the database.
    pub fn behind(&self) -> bool {
        self.mark
            .is_some_and(|m| self.db_worker_id < m.worker_id || self.db_run_id < m.run_id)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(m) = self.mark else {
            return write!(f, "no high-water mark yet (no worker has run here)");
        };
        let (w, r) = (self.db_worker_id, self.db_run_id);
        if self.behind() {
            write!(
                f,
                "the database is behind its high-water mark: worker {} registered and run {} \
                 was claimed, but the newest worker in the database is {w} and the newest run \
                 {r}. Committed transactions were lost (a damaged or deleted -wal file, a \
                 restored copy?). If the database was replaced on purpose, stop the worker and \
                 delete the .lock file beside it",
                m.worker_id, m.run_id
            )
        } else {
            write!(
                f,
                "worker {w} >= {}, run {r} >= {} ({} commits recorded)",
                m.worker_id, m.run_id, m.commits
            )
        }
    }
}

/// Compares the mark in the lock file at `lock` with the database.
pub fn compare(conn: &Connection, lock: &Path) -> Result<Comparison> {
    let (db_worker_id, db_run_id) = check::newest_ids(conn)?;
    Ok(Comparison {
        mark: read(lock),
        db_worker_id,
        db_run_id,
    })
}

/// The worker's writable view of the mark: a handle on the lock file it
/// holds, and the values it last wrote.
pub struct MarkFile {
    file: File,
    mark: Mark,
    buf: Vec<u8>,
    failed: bool,
}

impl MarkFile {
    /// Starts from `floor` (the mark already in the file, if any: it never
    /// goes down) raised to the newly registered `worker_id`, and writes it.
    pub fn new(file: File, floor: Option<Mark>, worker_id: i64) -> MarkFile {
        let mut mark = floor.unwrap_or_default();
        mark.worker_id = mark.worker_id.max(worker_id);
        let mut m = MarkFile {
            file,
            mark,
            buf: Vec::with_capacity(LEN),
            failed: false,
        };
        m.write();
        m
    }

    /// After a group commit: counts it, and raises the run id to the
    /// newest run it claimed. One `pwrite` of a few dozen bytes.
    pub fn committed(&mut self, newest_claimed: Option<i64>) {
        self.mark.commits += 1;
        if let Some(id) = newest_claimed {
            self.mark.run_id = self.mark.run_id.max(id);
        }
        self.write();
    }

    fn write(&mut self) {
        self.mark.encode(&mut self.buf);
        if let Err(e) = self.file.write_all_at(&self.buf, 0)
            && !self.failed
        {
            // A mark that is behind is harmless; say so once.
            self.failed = true;
            log::warn!("cannot write the high-water mark into the lock file: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_back_as_written_and_garbage_is_no_mark() {
        let m = Mark {
            worker_id: 12,
            run_id: 345_678,
            commits: 9,
        };
        let mut buf = Vec::new();
        m.encode(&mut buf);
        assert_eq!(buf.len(), LEN);
        assert_eq!(Mark::decode(&buf), Some(m));
        assert_eq!(Mark::decode(b""), None);
        assert_eq!(Mark::decode(&[b'x'; LEN]), None);
        buf[PREFIX.len() + 9] = b'z';
        assert_eq!(Mark::decode(&buf), None);
    }

    #[test]
    fn behind_only_when_the_database_lacks_what_the_mark_saw() {
        let mark = Some(Mark {
            worker_id: 3,
            run_id: 10,
            commits: 1,
        });
        let c = |w, r| Comparison {
            mark,
            db_worker_id: w,
            db_run_id: r,
        };
        assert!(!c(3, 10).behind());
        assert!(!c(4, 20).behind(), "others enqueued more");
        assert!(c(2, 10).behind());
        assert!(c(3, 9).behind());
        assert!(c(0, 0).to_string().contains("behind"));
        let none = Comparison {
            mark: None,
            db_worker_id: 0,
            db_run_id: 0,
        };
        assert!(!none.behind());
    }
}
