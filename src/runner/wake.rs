//! Wakes the writer when another process commits. SQLite has no
//! cross-process notification, but every commit writes the WAL file, so an
//! inotify watch on `<db>-wal` turns a commit into a message at once: an
//! idle worker starts new runs within a millisecond or two without polling
//! the database a thousand times a second.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};

use crate::context::Msg;

/// The running watcher; [`Watcher::stop`] ends and joins its thread.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    lock_path: PathBuf,
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
    /// failed (the writer then polls).
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

/// Starts watching `<db>-wal`; None when inotify is unavailable (the writer
/// then polls `PRAGMA data_version` on a short interval instead).
pub fn watch(db: &Path, lock_path: &Path, tx: Sender<Msg>) -> Option<(Watcher, Switch)> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let inotify = Inotify::init().ok()?;
    let mut switch = Switch {
        watches: inotify.watches(),
        wal: PathBuf::from(&wal),
        wd: None,
    };
    if !switch.set(true) {
        return None;
    }
    let mut w = inotify.watches();
    // The lock file is this worker's own: touching it wakes the thread so it
    // can see the stop flag. Not MODIFY: the writer rewrites the high-water
    // mark in it after every commit. Not OPEN: `jobmgr status` and `check`
    // open it to read the mark.
    w.add(lock_path, WatchMask::ATTRIB | WatchMask::CLOSE_WRITE)
        .ok()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let thread = thread::Builder::new()
        .name("wal-watch".into())
        .spawn(move || {
            run(inotify, tx, flag);
            let _ = done_tx.send(());
        })
        .ok()?;
    let watcher = Watcher {
        stop,
        lock_path: lock_path.to_path_buf(),
        thread: Some(thread),
        done,
    };
    Some((watcher, switch))
}

fn run(mut inotify: Inotify, tx: Sender<Msg>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 4096];
    loop {
        if inotify.read_events_blocking(&mut buf).is_err() || stop.load(Ordering::Acquire) {
            return;
        }
        // A full queue already holds a wake-up; never block here.
        if let Err(crossbeam_channel::TrySendError::Disconnected(_)) = tx.try_send(Msg::DbChanged) {
            return;
        }
    }
}

impl Watcher {
    /// Ends the watcher thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        let touched = File::options()
            .write(true)
            .open(&self.lock_path)
            .and_then(|f| f.set_modified(crate::clock::wall_time()));
        let ended = touched.is_ok() && self.done.recv_timeout(Duration::from_secs(1)).is_ok();
        match self.thread.take() {
            Some(t) if ended => {
                let _ = t.join();
            }
            // Without the wake-up the thread stays blocked; it holds nothing
            // but its inotify descriptor and ends with the process.
            _ => log::warn!("could not wake the WAL watcher; leaving it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    /// The writer rewrites the high-water mark in the lock file after every
    /// commit, and `jobmgr status` reads it: neither may wake the writer.
    /// A commit (a write to the WAL) and the watcher's own stop still do.
    #[test]
    fn the_mark_in_the_lock_file_wakes_nobody_and_the_wal_does() {
        let dir = std::env::temp_dir().join(format!("jobmgr-wake-{}", std::process::id()));
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
        let (watcher, _switch) = watch(&db, &lock, tx).expect("inotify");
        for i in 0..20u8 {
            lock_file.write_all_at(&[b'0' + i % 10; 64], 0).unwrap();
            std::fs::read(&lock).unwrap();
        }
        let quiet = rx.recv_timeout(Duration::from_millis(300));
        assert!(quiet.is_err(), "woken by the lock file: {quiet:?}");
        std::fs::write(dir.join("t.db-wal"), b"frame").unwrap();
        let woken = rx.recv_timeout(Duration::from_secs(5));
        assert!(matches!(woken, Ok(Msg::DbChanged)), "{woken:?}");
        watcher.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
