//! `JobRunCount`: how many runs there are in all (`ALL`) and per finished
//! status, so the statistics cost the same at any history size.
//!
//! Triggers keep the counters for every connection that has triggers on:
//! the server's, the CLI's, a user's `sqlite3`. The two connections that
//! write runs in bulk (the enqueue committer and the worker's writer) turn
//! triggers off and count here instead, once per statement rather than once
//! per row: the triggers ran a sub-program per inserted row and two per
//! claimed or finished run, which cost a bulk enqueue about a fifth of its
//! speed. Those connections therefore skip every trigger; the schema test
//! lists the triggers there are, so that a new one is not skipped unseen.

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use crate::error::{Error, Result};
use crate::job::JobStatus;

/// Turns triggers off on a connection that counts for itself.
pub fn count_by_hand(conn: &Connection) -> Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)
        .map(|_| ())
        .map_err(Error::db("turn triggers off"))
}

/// Whether `conn` counts for itself (its triggers are off).
pub fn by_hand(conn: &Connection) -> Result<bool> {
    conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)
        .map(|on| !on)
        .map_err(Error::db("read trigger setting"))
}

/// Counts `n` new runs, on a connection that counts by hand. The new runs
/// are QUEUED, which has no counter of its own (it is ALL minus the rest),
/// or SCHEDULED, which the caller counts with [`add_status`].
pub fn add_inserted(conn: &Connection, n: usize) -> Result<()> {
    add(conn, "ALL", n as i64)
}

/// Moves the counter of `status`, one that is not finished but has a
/// counter (SCHEDULED), by `n`, on a connection that counts by hand.
pub fn add_status(conn: &Connection, status: JobStatus, n: i64) -> Result<()> {
    debug_assert!(!matches!(status, JobStatus::Queued | JobStatus::Running));
    add(conn, status.as_str(), n)
}

/// Counts `n` runs that moved from RUNNING to the finished `status`, on a
/// connection that counts by hand.
pub fn add_finished(conn: &Connection, status: JobStatus, n: usize) -> Result<()> {
    debug_assert!(status.is_finished());
    add(conn, status.as_str(), n as i64)
}

fn add(conn: &Connection, key: &str, n: i64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    conn.prepare_cached("UPDATE JobRunCount SET n = n + ?2 WHERE status = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![key, n]))
        .map_err(Error::db("count runs"))
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, TestFile};

    /// The bulk writers skip every trigger. A new trigger would be skipped
    /// too: whoever adds one must decide what those writers do instead,
    /// then add it here.
    #[test]
    fn the_triggers_are_the_counters_and_nothing_else() {
        let file = TestFile::new("counts");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // The run counters, the metrics' rollups (`stats`) and the charts'
        // (`minutes`): the bulk writers count finished runs, log lines and
        // ledger rows by hand.
        assert_eq!(
            names,
            [
                "JobLog_stat_insert",
                "JobRunAttempt_stat_insert",
                "JobRun_count_delete",
                "JobRun_count_delete_finished",
                "JobRun_count_finish",
                "JobRun_count_insert",
                "JobRun_count_insert_finished",
                "JobRun_count_unfinish",
                "JobRun_minute_finish",
                "JobRun_minute_insert_finished",
                "JobRun_stat_finish",
                "JobRun_stat_insert_finished",
                "ScheduleTick_stat_insert",
            ]
        );
        drop(conn);
    }
}
