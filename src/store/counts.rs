//! `JobRunCounter` (read through the view `JobRunCount`): how many runs
//! there are in all (`ALL`) and per finished status, so the statistics cost
//! the same at any history size. The total is the largest id minus the
//! counter `GAPS` (V20), which an insert of a run whose id SQLite chose
//! never changes: an enqueue writes no counter page.
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
    conn.prepare_cached("UPDATE JobRunCounter SET n = n + ?2 WHERE status = ?1")
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
                "JobRun_minute_delete",
                "JobRun_minute_finish",
                "JobRun_minute_insert_finished",
                "JobRun_stat_finish",
                "JobRun_stat_insert_finished",
                "ScheduleTick_stat_insert",
            ]
        );
        drop(conn);
    }

    /// The total (the largest id minus `GAPS`) stays the number of rows
    /// through inserts with ids SQLite chose and ids given, deletes of the
    /// newest and of older runs, one row or many per statement, down to an
    /// empty table, and an insert with a chosen id writes no counter.
    #[test]
    fn the_total_follows_every_insert_and_delete() {
        let file = TestFile::new("counts-total");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        let total = |conn: &rusqlite::Connection| -> (i64, i64) {
            conn.query_row(
                "SELECT (SELECT n FROM JobRunCount WHERE status = 'ALL'), \
                 (SELECT count(*) FROM JobRun)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        let gaps = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row(
                "SELECT n FROM JobRunCounter WHERE status = 'GAPS'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let insert = "INSERT INTO JobRun (jobName, status, createdAt, updatedAt) \
                      VALUES ('a', 'QUEUED', 't', 't')";
        // A fixed pseudo-random walk (an LCG), so a failure repeats.
        let mut x: u64 = 7;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for step in 0..400 {
            let before = gaps(&conn);
            match next(6) {
                0 | 1 => {
                    conn.execute(insert, []).unwrap();
                    assert_eq!(
                        gaps(&conn),
                        before,
                        "step {step}: a plain insert moved GAPS"
                    );
                }
                2 => {
                    let id = next(300) as i64 + 1;
                    conn.execute(
                        "INSERT OR IGNORE INTO JobRun (id, jobName, status, createdAt, updatedAt) \
                         VALUES (?1, 'a', 'QUEUED', 't', 't')",
                        [id],
                    )
                    .unwrap();
                }
                3 => {
                    conn.execute(
                        "DELETE FROM JobRun WHERE id = (SELECT max(id) FROM JobRun)",
                        [],
                    )
                    .unwrap();
                }
                4 => {
                    let id = next(300) as i64;
                    conn.execute("DELETE FROM JobRun WHERE id = ?1", [id])
                        .unwrap();
                }
                _ => {
                    let (m, r) = (next(5) as i64 + 2, next(3) as i64);
                    conn.execute("DELETE FROM JobRun WHERE id % ?1 = ?2", [m, r])
                        .unwrap();
                }
            }
            let (counted, rows) = total(&conn);
            assert_eq!(counted, rows, "step {step}");
        }
        conn.execute("DELETE FROM JobRun", []).unwrap();
        assert_eq!(total(&conn), (0, 0));
        conn.execute(insert, []).unwrap();
        assert_eq!(total(&conn), (1, 1));
        drop(conn);
    }
}
