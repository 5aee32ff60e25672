//! Unit tests of the storage layer's internals: the hot queries' plans,
//! the WAL write layer, and the read-only pool a worker's jobs read through.
//! (What users see of the store is tested through the CLI, HTTP and the
//! SQLite file in `tests/`.)

pub(crate) mod plans;
mod readers;
mod wal;

use std::path::PathBuf;

/// A database file in a directory of its own for unit tests, removed on
/// drop.
pub(crate) struct TestFile(PathBuf);

impl TestFile {
    pub(crate) fn new(name: &str) -> TestFile {
        let dir = std::env::temp_dir().join(format!("jobmgr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestFile(dir)
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("t.db")
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
