//! The worker's writer connection without foreign-key checks for its group
//! commits, and with them again for every other write it carries.
//!
//! Why the group commit may skip them: every row it writes that refers to
//! another row refers to one the same IMMEDIATE transaction has just
//! checked or written. A log line or a kept attempt (`JobLog`,
//! `JobRunAttempt` → `JobRun`) belongs to a run that the commit's fence
//! found RUNNING under this worker (`Ownership::owns`, the finish's fenced
//! UPDATE, the attempt's `INSERT … SELECT` from the fenced row); a claim's
//! `workerId` (→ `Worker`) is this worker's own row, registered before the
//! writer starts and never deleted. The commit deletes nothing, so no
//! `ON DELETE` action is skipped. With checks on, SQLite looked the parent
//! up once per row anyway: per log line a seek in `JobRun`, per claimed run
//! a seek in `Worker` (measured under callgrind, see [`trust_references`]).
//!
//! A job's write through the writer ([`crate::context`]'s `Msg::Apply`:
//! media rows, the scheduler's decisions) is arbitrary, so it runs with
//! checks on ([`with_reference_checks`]).

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use crate::error::{Error, Result};

/// Turns foreign-key checks off on the worker writer's connection. Only
/// for a connection whose writes are the group commit's (see the module
/// header); cut the writer's instructions per `process-real` run from
/// about 89k by the parent look-ups of two log lines and a claim.
pub fn trust_references(conn: &Connection) -> Result<()> {
    set(conn, false)
}

/// Runs `f` on `conn` with foreign-key checks on, then turns them off
/// again. Switching them expires the connection's prepared statements
/// (SQLite recompiles each on its next use, with or without the checks),
/// a cost paid once per such write, which is rare beside the commits.
/// Must be called outside a transaction, where the switch takes effect.
pub fn with_reference_checks<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> T,
) -> Result<T> {
    set(conn, true)?;
    let out = f(conn);
    set(conn, false)?;
    Ok(out)
}

/// Whether `conn` checks foreign keys.
#[cfg(test)]
fn checks_references(conn: &Connection) -> Result<bool> {
    conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY)
        .map_err(Error::db("read foreign-key setting"))
}

fn set(conn: &Connection, on: bool) -> Result<()> {
    let now = conn
        .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, on)
        .map_err(Error::db("switch foreign-key checks"))?;
    if now != on {
        // SQLite leaves the setting alone inside a transaction.
        return Err(Error::Internal(format!(
            "foreign-key checks could not be switched {}",
            if on { "on" } else { "off" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, TestFile, open_writer_connection};

    /// The group commit's connection skips the checks; a job's write on it
    /// is checked (a line for a missing run is refused, a deleted run's
    /// lines go with it), and the checks are off again afterwards.
    #[test]
    fn a_jobs_write_on_the_trusting_connection_is_checked() {
        let file = TestFile::new("trusted");
        Store::open(&file.db()).unwrap();
        let mut conn = open_writer_connection(&file.db()).unwrap();
        trust_references(&conn).unwrap();
        assert!(!checks_references(&conn).unwrap());
        conn.execute_batch(
            "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt) \
             VALUES (1, 'a', 'COMPLETED', 'x', 'x');
             INSERT INTO JobLog (jobRunId, level, message, timestamp) VALUES (1, 'info', 'm', 'x');",
        )
        .unwrap();
        let dangling = "INSERT INTO JobLog (jobRunId, level, message, timestamp) \
                        VALUES (99, 'info', 'm', 'x')";
        let refused = with_reference_checks(&mut conn, |c| {
            assert!(checks_references(c).unwrap());
            let refused = c.execute(dangling, []).is_err();
            c.execute("DELETE FROM JobRun WHERE id = 1", []).unwrap();
            refused
        })
        .unwrap();
        assert!(refused, "a line for a missing run was accepted");
        let lines: i64 = conn
            .query_row("SELECT count(*) FROM JobLog", [], |r| r.get(0))
            .unwrap();
        assert_eq!(lines, 0, "the deleted run's line stayed");
        assert!(!checks_references(&conn).unwrap());
    }
}
