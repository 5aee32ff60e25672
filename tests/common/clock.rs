//! Helpers for tests that move time: the test-driven clock (a file holding
//! the time, named to jobmgr by `JOBMGR_TEST_CLOCK_FILE`) and the text form
//! jobmgr stores timestamps in.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};

use super::TestDb;

/// Test only: run on the system clock moved by this many milliseconds.
pub const OFFSET_ENV: &str = "JOBMGR_TEST_CLOCK_OFFSET_MS";
/// Test only: run on the time written in this file.
pub const FILE_ENV: &str = "JOBMGR_TEST_CLOCK_FILE";

/// The clock a test drives. The file is replaced whole (written beside it,
/// then renamed over it), so jobmgr never reads it half written.
pub struct DrivenClock {
    pub path: PathBuf,
    ms: AtomicI64,
}

impl DrivenClock {
    /// A clock in the test's directory, standing at `start_ms`
    /// (milliseconds since the epoch).
    pub fn new(db: &TestDb, start_ms: i64) -> DrivenClock {
        let c = DrivenClock {
            path: db.dir.join("clock"),
            ms: AtomicI64::new(start_ms),
        };
        c.set(start_ms);
        c
    }

    /// Sets the time to `ms`.
    pub fn set(&self, ms: i64) {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, ms.to_string()).expect("write clock file");
        std::fs::rename(&tmp, &self.path).expect("replace clock file");
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the time by `ms` milliseconds.
    pub fn advance(&self, ms: i64) {
        self.set(self.now_ms() + ms);
    }

    /// The time the clock stands at.
    pub fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }

    /// The environment variable that puts a jobmgr process on this clock.
    pub fn env(&self) -> (&'static str, &str) {
        (FILE_ENV, self.path.to_str().expect("UTF-8 clock path"))
    }

    /// Puts `cmd` on this clock.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let (k, v) = self.env();
        cmd.env(k, v)
    }
}

/// The text form jobmgr stores for `ms` milliseconds since the epoch
/// (`2031-05-06T07:08:09.000Z`), as SQLite itself formats it.
pub fn timestamp_text(ms: i64) -> String {
    rusqlite::Connection::open_in_memory()
        .and_then(|c| {
            c.query_row(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1 / 1000.0, 'unixepoch')",
                [ms],
                |r| r.get(0),
            )
        })
        .expect("format a time")
}
