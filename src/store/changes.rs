//! The change feed: a connection of its own that stays open, so `PRAGMA
//! data_version` tells whether any other connection (the worker process, a
//! CLI, the web server's pool) committed since the last look, and what
//! changed is then read on that same connection in one read transaction.

use std::path::Path;

use rusqlite::Connection;

use super::insight;
use crate::error::{Error, Result};
use crate::job::JobRun;

/// A dedicated connection for noticing commits.
pub struct ChangeFeed {
    conn: Connection,
}

/// The runs' reads of one look, all from one snapshot of the database.
pub struct Snapshot<'a> {
    conn: &'a Connection,
}

impl ChangeFeed {
    /// Opens the feed's own connection to the database at `path`.
    pub fn open(path: &Path) -> Result<ChangeFeed> {
        Ok(ChangeFeed {
            conn: super::open_connection(path)?,
        })
    }

    /// A number that changes whenever another connection commits.
    pub fn version(&self) -> Result<i64> {
        super::data_version(&self.conn)
    }

    /// Runs `f`'s reads in one read transaction. After another process's
    /// commit a connection's page cache is stale and each read transaction
    /// takes the WAL's read lock again: a look made of five reads on pool
    /// connections paid that five times, and read the same upper pages of
    /// `JobRun` on each, between a commit and its delivery to the pages.
    pub fn read<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<T>) -> Result<T> {
        self.run("BEGIN").map_err(Error::db("begin a look"))?;
        let out = f(&Snapshot { conn: &self.conn });
        // A read transaction has nothing to keep: ending it cannot lose
        // anything, and an error here leaves it to the next BEGIN to fail.
        let ended = self.run("COMMIT").map_err(Error::db("end a look"));
        let out = out?;
        ended?;
        Ok(out)
    }

    /// A statement kept prepared: a look is made several times a second.
    fn run(&self, sql: &str) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute([])
    }
}

impl Snapshot<'_> {
    /// The highest run id (0 when there are none).
    pub fn max_run_id(&self) -> Result<i64> {
        insight::max_run_id(self.conn)
    }

    /// Runs with an id of at least `from`, by id, at most `limit`.
    pub fn runs_from_id(&self, from: i64, limit: usize) -> Result<Vec<JobRun>> {
        insight::runs_from_id(self.conn, from, limit)
    }

    /// The ids of the RUNNING runs, and the rows of those updated at or
    /// after `at` (UTC text), at most `limit`.
    pub fn running_runs(&self, at: &str, limit: usize) -> Result<(Vec<i64>, Vec<JobRun>)> {
        insight::running_runs(self.conn, at, limit)
    }

    /// Runs finished after the position (`finishedAt` text, id), oldest
    /// first, at most `limit`.
    pub fn runs_finished_after(&self, after: (&str, i64), limit: usize) -> Result<Vec<JobRun>> {
        insight::runs_finished_after(self.conn, after.0, after.1, limit)
    }

    /// The runs among `ids` that are QUEUED now.
    pub fn queued_among(&self, ids: &[i64]) -> Result<Vec<JobRun>> {
        insight::queued_among(self.conn, ids)
    }
}
