//! Waiting for another connection's write lock. SQLite's own busy timeout
//! sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a writer that
//! finds the lock taken by a commit of 1.5 ms gets it at 3 ms, and one held
//! 4 ms costs it 8: an acknowledged enqueue over HTTP while the worker
//! commits its batches waited out those steps, not the lock. This handler
//! tries every 100 µs for the first 10 ms (a commit is one fsync, normally
//! well under that), then every millisecond, up to the same total timeout.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Tries at the short interval until this long has been waited.
const FINE_FOR: Duration = Duration::from_millis(10);
const FINE: Duration = Duration::from_micros(100);
const COARSE: Duration = Duration::from_millis(1);

thread_local! {
    /// When the current wait began: SQLite calls the handler on the
    /// waiting statement's own thread, with a count that restarts at 0.
    static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Makes `conn` wait for a busy lock this way, for at most
/// [`super::BUSY_TIMEOUT`] in all (it replaces SQLite's busy timeout).
pub(super) fn install(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait))
}

/// Sleeps before the next try; false gives up (SQLITE_BUSY).
fn wait(count: i32) -> bool {
    let now = Instant::now();
    let since = SINCE.with(|s| {
        if count == 0 {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    let waited = now.duration_since(since);
    if waited >= super::BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(if waited < FINE_FOR { FINE } else { COARSE });
    true
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A lock held 20 ms is taken within a few ms of its release; SQLite's
    /// own steps (0, 1, 3, 8, 18, 33 ms) would take it at 33 ms.
    #[test]
    fn a_lock_is_taken_soon_after_its_release() {
        let dir = std::env::temp_dir().join(format!("jobmgr-busy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db");
        let holder = crate::store::open_connection(&db).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let waiter = crate::store::open_connection(&db).unwrap();
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(()).unwrap();
            let started = Instant::now();
            waiter.execute_batch("BEGIN IMMEDIATE; COMMIT;").unwrap();
            started.elapsed()
        });
        rx.recv().unwrap();
        let held = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        holder.execute_batch("COMMIT").unwrap();
        let released = held.elapsed();
        let took = t.join().unwrap();
        assert!(
            took < released + Duration::from_millis(8),
            "waited {took:?} for a lock released after {released:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
