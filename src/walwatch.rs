//! Learning at once that another process committed. SQLite has no
//! cross-process notification, but every commit writes the WAL file, so an
//! inotify watch on `<db>-wal` turns a commit into a call at once: the
//! worker's writer starts new runs, and `serve`'s change watcher publishes
//! what changed, within a millisecond or two, without polling the
//! database a thousand times a second. Both keep a `PRAGMA data_version`
//! poll as the fallback for where inotify is missing.
//!
//! The wake-up comes as the other process writes its commit's frames; the
//! commit becomes visible once that write is synced and published in the
//! wal-index, a moment later. A caller that finds nothing new right after
//! a wake-up looks again for a short while ([`RECHECK`]).

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};

/// After a wake-up, how long a caller that sees no new commit yet keeps
/// looking: the commit's fsync, then its publication, follow the write
/// that woke it, and an fsync on a busy disk can take tens of
/// milliseconds; a commit missed here waits for the caller's fallback
/// poll instead.
pub const RECHECK: Duration = Duration::from_secs(1);
/// The delay between looks during the first [`RECHECK_FAST`] after a
/// wake-up: a commit on an idle disk turns visible a few hundred
/// microseconds after the write that woke the caller, and a look is one
/// `PRAGMA data_version` read, so looking this often costs little and
/// finds the commit within this of its publication.
pub const RECHECK_POLL: Duration = Duration::from_micros(100);
/// How long the looks stay [`RECHECK_POLL`] apart: about the fsync of a
/// small commit on a busy disk. Doubling from the first look instead found
/// a commit visible after 1.1 ms only at 1.5 ms (looks at 0.2, 0.6 and
/// 1.4 ms), and one after 3.1 ms at 6.2 ms.
pub const RECHECK_FAST: Duration = Duration::from_millis(4);
/// The longest delay between two looks during the window: a slow fsync
/// is seen within this of its end, and a whole window costs a few hundred
/// cheap `PRAGMA data_version` reads at most.
pub const RECHECK_MAX_STEP: Duration = Duration::from_millis(5);

/// The look-again window after a wake-up: quick looks at first (a commit
/// on an idle disk is visible within a millisecond), then slower ones, so
/// that a commit whose fsync is slow is still seen without the poll.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recheck {
    until: Option<Instant>,
    /// Until when the looks stay [`RECHECK_POLL`] apart.
    fast_until: Option<Instant>,
    step: Duration,
}

impl Recheck {
    /// A wake-up came: look again soon, for up to [`RECHECK`].
    pub fn start(&mut self) {
        self.start_at(Instant::now());
    }

    fn start_at(&mut self, now: Instant) {
        self.until = Some(now + RECHECK);
        self.fast_until = Some(now + RECHECK_FAST);
        self.step = RECHECK_POLL;
    }

    /// A new commit was seen (or another reason to stop looking).
    pub fn end(&mut self) {
        self.until = None;
    }

    /// Whether the window is open now.
    pub fn is_on(&self) -> bool {
        self.until.is_some_and(|t| t > Instant::now())
    }

    /// How long to wait before the next look while the window is open.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// A look found nothing new: past the first [`RECHECK_FAST`], the next
    /// one waits twice as long as this one did.
    pub fn missed(&mut self) {
        self.missed_at(Instant::now());
    }

    fn missed_at(&mut self, now: Instant) {
        if self.fast_until.is_some_and(|t| t > now) {
            return;
        }
        self.step = (self.step * 2).min(RECHECK_MAX_STEP);
    }
}

/// The running watch thread; [`WalWatch::stop`] ends and joins it.
pub struct WalWatch {
    stop: Arc<AtomicBool>,
    /// The watch on the anchor file: removing it is what wakes the thread
    /// to stop (the kernel then queues an `IN_IGNORED` event).
    watches: Watches,
    anchor: WatchDescriptor,
    thread: Option<thread::JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
}

/// Turns the watch on the WAL file on and off. A busy writer that will
/// claim again anyway turns it off: every page it writes to the WAL would
/// otherwise raise an inotify event (a twentieth of its time went there).
pub struct Switch {
    watches: Watches,
    wal: PathBuf,
    wd: Option<WatchDescriptor>,
}

impl Switch {
    /// Whether the WAL file is watched now.
    pub fn is_on(&self) -> bool {
        self.wd.is_some()
    }

    /// Watches the WAL file or stops watching it; false when watching
    /// failed (the caller then polls).
    pub fn set(&mut self, on: bool) -> bool {
        match (on, self.wd.take()) {
            (true, None) => match self.watches.add(&self.wal, WatchMask::MODIFY) {
                Ok(wd) => self.wd = Some(wd),
                Err(e) => {
                    log::warn!("cannot watch the WAL file ({e}); polling instead");
                    return false;
                }
            },
            (false, Some(wd)) => {
                // A checkpoint that reset the WAL may have dropped the
                // watch already; either way it is gone.
                let _ = self.watches.remove(wd);
            }
            (_, wd) => self.wd = wd,
        }
        true
    }
}

/// The WAL file of the database at `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Starts a thread named `name` that calls `wake` whenever `<db>-wal` is
/// written, until `wake` returns false or the watch is stopped. `anchor`
/// is a file that outlives the watch (the worker's lock file, or the
/// database itself); it is watched only for its removal, and the stop
/// removes that watch to wake the thread, so stopping writes nothing.
/// None when inotify is unavailable: the caller polls instead.
pub fn watch(
    db: &Path,
    anchor: &Path,
    name: &str,
    wake: impl Fn() -> bool + Send + 'static,
) -> Option<(WalWatch, Switch)> {
    let inotify = Inotify::init().ok()?;
    let mut switch = Switch {
        watches: inotify.watches(),
        wal: wal_path(db),
        wd: None,
    };
    if !switch.set(true) {
        return None;
    }
    let mut watches = inotify.watches();
    // Not MODIFY, OPEN or ATTRIB: the writer rewrites the high-water mark in
    // the lock file after every commit, and `jobmgr status` and `check`
    // open it to read the mark; none of that may wake anyone.
    let anchor = watches.add(anchor, WatchMask::DELETE_SELF).ok()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let thread = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            run(inotify, wake, flag);
            let _ = done_tx.send(());
        })
        .ok()?;
    let watch = WalWatch {
        stop,
        watches,
        anchor,
        thread: Some(thread),
        done,
    };
    Some((watch, switch))
}

fn run(mut inotify: Inotify, wake: impl Fn() -> bool, stop: Arc<AtomicBool>) {
    // The crate opens the descriptor non-blocking, and its blocking read
    // clears and restores the flag around every read: four `fcntl` calls
    // per wake-up, two of them between a commit and its wake. Cleared once
    // here, a plain read blocks. Should that fail, the blocking read works.
    let blocking = clear_nonblocking(inotify.as_raw_fd());
    let mut buf = [0u8; 4096];
    loop {
        let read = if blocking {
            inotify.read_events(&mut buf)
        } else {
            inotify.read_events_blocking(&mut buf)
        };
        if read.is_err() || stop.load(Ordering::Acquire) {
            return;
        }
        if !wake() {
            return;
        }
    }
}

/// Makes `fd` blocking; false when it could not.
#[allow(unsafe_code)]
fn clear_nonblocking(fd: RawFd) -> bool {
    // SAFETY: `fd` is the open inotify descriptor this thread owns; F_GETFL
    // and F_SETFL only read and set its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags != -1 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) != -1
    }
}

impl WalWatch {
    /// Ends the watch thread and waits for it; false when it could not be
    /// woken (it is then left blocked: it holds nothing but its inotify
    /// descriptor, and ends with the process).
    pub fn stop(mut self) -> bool {
        self.stop.store(true, Ordering::Release);
        let removed = self.watches.remove(self.anchor).is_ok();
        let ended = removed && self.done.recv_timeout(Duration::from_secs(1)).is_ok();
        match self.thread.take() {
            Some(t) if ended => {
                let _ = t.join();
            }
            _ => log::warn!("could not wake the WAL watch thread; leaving it"),
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::unix::fs::FileExt;

    use super::*;

    /// The writer rewrites the high-water mark in the lock file after every
    /// commit, and `jobmgr status` reads it: neither may wake anyone. A
    /// commit (a write to the WAL) does, and the stop ends the thread.
    #[test]
    fn the_mark_in_the_anchor_wakes_nobody_and_the_wal_does() {
        let dir = std::env::temp_dir().join(format!("jobmgr-walwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (db, lock) = (dir.join("t.db"), dir.join("t.db.lock"));
        std::fs::write(dir.join("t.db-wal"), b"").unwrap();
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .unwrap();
        let (tx, rx) = crossbeam_channel::bounded(16);
        let (watch, _switch) =
            watch(&db, &lock, "test-watch", move || tx.try_send(()).is_ok()).expect("inotify");
        for i in 0..20u8 {
            lock_file.write_all_at(&[b'0' + i % 10; 64], 0).unwrap();
            lock_file
                .set_modified(std::time::SystemTime::now())
                .unwrap();
            std::fs::read(&lock).unwrap();
        }
        let quiet = rx.recv_timeout(Duration::from_millis(300));
        assert!(quiet.is_err(), "woken by the anchor file: {quiet:?}");
        std::fs::write(dir.join("t.db-wal"), b"frame").unwrap();
        let woken = rx.recv_timeout(Duration::from_secs(5));
        assert!(woken.is_ok(), "{woken:?}");
        assert!(watch.stop(), "the stop did not wake the thread");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The window opens on a wake-up, backs off to its longest step while
    /// nothing is seen, and closes on a commit seen.
    #[test]
    fn the_recheck_backs_off_and_ends() {
        let mut r = Recheck::default();
        assert!(!r.is_on());
        let woken = Instant::now();
        r.start_at(woken);
        assert!(r.is_on());
        assert_eq!(r.step(), RECHECK_POLL);
        r.missed_at(woken + RECHECK_FAST / 2);
        assert_eq!(
            r.step(),
            RECHECK_POLL,
            "quick looks while the commit is young"
        );
        r.missed_at(woken + RECHECK_FAST);
        assert_eq!(r.step(), RECHECK_POLL * 2);
        for _ in 0..20 {
            r.missed_at(woken + RECHECK_FAST);
        }
        assert_eq!(r.step(), RECHECK_MAX_STEP);
        r.start();
        assert_eq!(r.step(), RECHECK_POLL, "a new wake-up looks quickly again");
        r.end();
        assert!(!r.is_on());
    }

    /// Stopping works with the WAL watch switched off too (the busy
    /// writer's case): the thread is woken through the anchor alone.
    #[test]
    fn a_watch_switched_off_still_stops() {
        let dir = std::env::temp_dir().join(format!("jobmgr-walwatch-off-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(dir.join("t.db-wal"), b"").unwrap();
        let (watch, mut switch) = watch(&db, &db, "test-watch", || true).expect("inotify");
        assert!(switch.set(false));
        assert!(!switch.is_on());
        assert!(watch.stop(), "the stop did not wake the thread");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
