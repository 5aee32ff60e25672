//! Checkpoints off the hot write paths. With SQLite's default, the
//! connection whose commit takes the WAL past 1,000 frames runs the
//! checkpoint itself, inside that commit: it copies the pages to the
//! database file and syncs it, about a tenth of the worker's writer's time
//! and one enqueue's latency in every couple of hundred. The bulk writers
//! (the worker's writer, `serve`'s enqueue group commit) hand that work to
//! a checkpointer thread of their process instead: after each commit they
//! look at the WAL's length (noted by a WAL hook, see
//! [`crate::store::checkpoint`]) and, once 1,000 frames are waiting, wake
//! the thread, which runs a PASSIVE checkpoint on a connection of its own.
//! The commit and its acknowledgement never wait for it, and durability is
//! unchanged (every commit is still synced before it is acknowledged).
//!
//! A passive checkpoint copies what it can and waits for no one:
//! - frames a reader on an old snapshot still needs stay in the WAL until
//!   a later checkpoint, as with SQLite's own;
//! - while commits keep coming the WAL is never completely copied when the
//!   next commit starts, so it cannot start over and keeps growing. Past
//!   [`FALLBACK_FRAMES`] the committing thread therefore runs one passive
//!   checkpoint itself, after its commit is acknowledged, between two of
//!   its own commits: the checkpointer has copied all but the frames of
//!   the last thousand or so, so this one is short, and the next commit
//!   starts the WAL over. It does so after each of its commits until the
//!   WAL has started over: another process's writer may commit in
//!   between, and a reader may hold the WAL (the checkpoint then has
//!   nothing to copy and costs a few lock calls);
//! - at shutdown the thread runs a last checkpoint, so a stopped process
//!   leaves its commits in the database file.
//!
//! Each checkpoint that ran is counted, by who ran it, with the frames it
//! copied and its time: process-wide relaxed counters that `GET /metrics`
//! reads (see [`counts`]).
//!
//! Nothing here truncates or restarts the WAL by force (no TRUNCATE or
//! RESTART checkpoint), so Litestream, which holds a read lock to keep the
//! WAL from starting over before it has copied it, and checkpoints on its
//! own, is never fought.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded, select};

use crate::error::{Error, Result};
use crate::store::checkpoint::{self, Passive, WalIndex};
use crate::store::{self, Connection};

/// Frames waiting in the WAL that wake the checkpointer: SQLite's own
/// automatic checkpoint threshold (about 4 MB of WAL).
pub const NUDGE_FRAMES: u32 = 1000;

/// A WAL this long (about 16 MB) has not started over since the
/// checkpointer began following it: the committing thread checkpoints
/// once itself (see the module's header). Until a WAL first starts over,
/// each commit also makes the file longer, and the sync of a longer file
/// waits for the file system's journal (under strace a growing commit's
/// sync took 4.1 ms against 3.1 ms), so the mark is not set higher.
pub const FALLBACK_FRAMES: u32 = 4 * NUDGE_FRAMES;

/// What the committing threads and the checkpointer share.
struct Shared {
    /// The WAL's length and the frames of it in the database file, as the
    /// last checkpoint of this process found them.
    log: AtomicU32,
    checkpointed: AtomicU32,
    /// One pending wake-up is enough: the thread copies all it can.
    wake: Sender<()>,
    /// Read before each checkpoint, for the frames it copies.
    index: WalIndex,
}

/// The checkpoints one kind of checkpointing ran in this process.
struct Tally {
    runs: AtomicU64,
    frames: AtomicU64,
    micros: AtomicU64,
}

impl Tally {
    const fn new() -> Tally {
        Tally {
            runs: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            micros: AtomicU64::new(0),
        }
    }

    /// Counts a checkpoint begun at `started` that copied `frames`; one
    /// that found another checkpoint running did nothing and is not counted.
    fn add(&self, p: &Passive, frames: u32, started: Instant) {
        if p.busy {
            return;
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.frames.fetch_add(u64::from(frames), Ordering::Relaxed);
        let took = started.elapsed().as_micros() as u64;
        self.micros.fetch_add(took, Ordering::Relaxed);
    }

    fn read(&self) -> Checkpoints {
        Checkpoints {
            runs: self.runs.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
            micros: self.micros.load(Ordering::Relaxed),
        }
    }
}

/// The checkpointer threads' checkpoints (the last one at a stop included)
/// and the committing threads' fallback ones, in this process.
static BY_THREAD: Tally = Tally::new();
static BY_FALLBACK: Tally = Tally::new();

/// Checkpoints that ran, the WAL frames they copied into the database
/// file, and the time they took (µs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoints {
    pub runs: u64,
    pub frames: u64,
    pub micros: u64,
}

/// This process's checkpoints so far: (by its checkpointer threads, by
/// committing threads past [`FALLBACK_FRAMES`]). SQLite's automatic
/// checkpoints, inside the commits of the connections not handed over,
/// are not among them.
pub fn counts() -> (Checkpoints, Checkpoints) {
    (BY_THREAD.read(), BY_FALLBACK.read())
}

impl Shared {
    fn record(&self, p: Passive) {
        if !p.busy {
            self.log.store(p.log, Ordering::Relaxed);
            self.checkpointed.store(p.checkpointed, Ordering::Relaxed);
        }
    }

    /// Frames of a WAL of `frames` not yet in the database file, as far as
    /// this process knows.
    fn waiting(&self, frames: u32) -> u32 {
        let (log, done) = (
            self.log.load(Ordering::Relaxed),
            self.checkpointed.load(Ordering::Relaxed),
        );
        // A WAL shorter than at the last checkpoint has started over since:
        // every frame in it is new.
        if frames < log {
            frames
        } else {
            frames.saturating_sub(done)
        }
    }
}

/// The running checkpointer thread of one process; [`Checkpointer::stop`]
/// (or dropping it) runs the last checkpoint and joins it.
pub struct Checkpointer {
    shared: Arc<Shared>,
    /// Nothing is sent: dropping it stops the thread.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a bulk writer's connection wakes the checkpointer with.
#[derive(Clone)]
pub struct Nudge {
    shared: Arc<Shared>,
}

/// Follows one connection's commits: wakes the checkpointer, and
/// checkpoints itself past [`FALLBACK_FRAMES`].
pub struct Follower {
    shared: Arc<Shared>,
}

impl Checkpointer {
    /// Starts the thread, which opens a connection of its own to the
    /// database at `db` when it first checkpoints.
    pub fn start(db: &Path) -> Result<Checkpointer> {
        let (wake, woken) = bounded(1);
        let (stop, stopped) = bounded::<()>(0);
        let shared = Arc::new(Shared {
            log: AtomicU32::new(0),
            checkpointed: AtomicU32::new(0),
            wake,
            index: WalIndex::of(db),
        });
        let s = shared.clone();
        let path = db.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || run(&path, &s, &woken, &stopped))
            .map_err(Error::io("spawn checkpointer", db))?;
        Ok(Checkpointer {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The handle bulk writers wake this thread with.
    pub fn nudge(&self) -> Nudge {
        Nudge {
            shared: self.shared.clone(),
        }
    }

    /// Runs a last checkpoint and joins the thread. Call it after the
    /// process's last commit through a [`Follower`].
    pub fn stop(mut self) {
        self.join();
    }

    fn join(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    /// A checkpointer dropped unstopped (a start-up that failed later) still
    /// ends its thread.
    fn drop(&mut self) {
        self.join();
    }
}

fn run(db: &Path, shared: &Shared, woken: &Receiver<()>, stopped: &Receiver<()>) {
    // Opened at the first checkpoint, not at start: a connection parses the
    // whole schema when it opens (about 1.6 ms), which `serve` would pay
    // before its first answer, and a process that never fills the WAL
    // opens it only for its last checkpoint.
    let mut conn = Lazy { db, conn: None };
    loop {
        select! {
            recv(woken) -> _ => {
                checkpoint_now(&mut conn, shared, "checkpoint");
                // A nudge sent while it ran counted frames it has copied
                // since; the next commit past the threshold nudges again.
                while woken.try_recv().is_ok() {}
            }
            recv(stopped) -> _ => {
                checkpoint_now(&mut conn, shared, "last checkpoint");
                return;
            }
        }
    }
}

/// The checkpointer's connection, opened when first asked for.
struct Lazy<'a> {
    db: &'a Path,
    conn: Option<Connection>,
}

impl Lazy<'_> {
    fn get(&mut self) -> Result<&Connection> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot => Ok(slot.insert(store::open_connection(self.db)?)),
        }
    }
}

fn checkpoint_now(conn: &mut Lazy<'_>, shared: &Shared, what: &str) {
    let started = Instant::now();
    match conn
        .get()
        .and_then(|c| checkpoint::passive_copied(c, &shared.index))
    {
        Ok((p, copied)) => {
            BY_THREAD.add(&p, copied, started);
            shared.record(p);
            log::debug!(
                "{what}: {} of the WAL's {} frames in the database file{}",
                p.checkpointed,
                p.log,
                if p.busy {
                    " (another checkpoint was running)"
                } else {
                    ""
                }
            );
        }
        // The next nudge tries again (to open the connection too); the
        // fallback bounds the WAL meanwhile.
        Err(e) => log::warn!("{what}: {e}"),
    }
}

impl Nudge {
    /// Hands the checkpoints of `conn`, a bulk writer's connection, to the
    /// checkpointer (SQLite's automatic checkpoint off on it), and returns
    /// what its owner calls after each commit.
    pub fn follow(&self, conn: &Connection) -> Result<Follower> {
        checkpoint::hand_over(conn)?;
        Ok(Follower {
            shared: self.shared.clone(),
        })
    }
}

impl Follower {
    /// Called by the thread that just committed on `conn`, once the commit
    /// is acknowledged: wakes the checkpointer when enough frames wait, and
    /// checkpoints on `conn` itself while the WAL is past the fallback mark.
    pub fn committed(&self, conn: &Connection) {
        let Some(frames) = checkpoint::frames_after_commit() else {
            return;
        };
        if self.shared.waiting(frames) >= NUDGE_FRAMES {
            let _ = self.shared.wake.try_send(());
        }
        if frames < FALLBACK_FRAMES {
            return;
        }
        // After every commit until the WAL starts over: another process's
        // writer (serve's group commit beside the worker) may commit before
        // this connection's next one and keep it from starting over, and
        // while a reader holds it back the checkpoint finds nothing to copy
        // and costs a few lock calls.
        let started = Instant::now();
        match checkpoint::passive_copied(conn, &self.shared.index) {
            // The checkpointer is at it: the next commit tries again.
            Ok((p, _)) if p.busy => {}
            Ok((p, copied)) => {
                BY_FALLBACK.add(&p, copied, started);
                self.shared.record(p);
                log::debug!(
                    "WAL at {frames} frames: checkpointed on the committing thread, \
                     {} of {} frames in the database file",
                    p.checkpointed,
                    p.log
                );
            }
            Err(e) => log::warn!("checkpoint a WAL of {frames} frames: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TestFile;

    #[test]
    fn a_fallback_checkpoint_is_counted_with_the_frames_it_copied() {
        let file = TestFile::new("checkpointer-fallback");
        let conn = store::open_connection(&file.db()).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        // No checkpointer thread: the nudge is never received, so only the
        // committing thread's fallback checkpoints.
        let (wake, _woken) = bounded(1);
        let follower = Follower {
            shared: Arc::new(Shared {
                log: AtomicU32::new(0),
                checkpointed: AtomicU32::new(0),
                wake,
                index: WalIndex::of(&file.db()),
            }),
        };
        checkpoint::hand_over(&conn).unwrap();
        let (_, before) = counts();
        // Past the fallback mark in one commit, about a page a row.
        conn.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO t SELECT zeroblob(3000) FROM k",
            [i64::from(FALLBACK_FRAMES) + 100],
        )
        .unwrap();
        follower.committed(&conn);
        let (_, after) = counts();
        let frames = follower.shared.log.load(Ordering::Relaxed);
        assert!(frames > FALLBACK_FRAMES, "{frames} frames");
        assert_eq!(after.runs - before.runs, 1);
        assert_eq!(after.frames - before.frames, u64::from(frames));
        assert!(after.micros > before.micros);
        // All of it copied, the next commit starts the WAL over: below the
        // mark, no fallback.
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        follower.committed(&conn);
        assert_eq!(counts().1.runs, after.runs);
    }
}
