//! Unique runs: a run enqueued with a key (`--unique-key`, or derived from
//! its type's `unique` parameters) is inserted only while no run with that
//! key is SCHEDULED, WAITING, QUEUED or RUNNING; otherwise the existing one
//! is returned. The look and the insert share one IMMEDIATE transaction,
//! and the partial unique index `JobRun_unique` makes a second live run
//! with the key impossible whatever path inserts it.
//!
//! "Live" is written `finishedAt IS NULL` (V18): every move to a finished
//! status sets `finishedAt`, and the claim writes neither column of the
//! index, so a keyed run's entry is written at its enqueue and removed at
//! its finish, never in between.

use rusqlite::{OptionalExtension, Transaction, params};

use super::runs::{NewRun, insert_runs};
use crate::error::{Error, Result};

/// The live run holding `key`, if any. The terms after the key are the
/// index's own `WHERE`, so the planner may use it.
const LIVE_SQL: &str = "SELECT id FROM JobRun INDEXED BY JobRun_unique WHERE uniqueKey = ?1 \
     AND uniqueKey IS NOT NULL AND finishedAt IS NULL";

/// What a keyed insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    /// A new run, with this id.
    Inserted(i64),
    /// A live run already holds the key.
    Existing(i64),
}

/// Inserts `run` with `key` unless a live run holds it.
pub fn insert_keyed(tx: &Transaction<'_>, run: &NewRun, key: &str, now: &str) -> Result<Keyed> {
    if let Some(id) = live(tx, key)? {
        return Ok(Keyed::Existing(id));
    }
    let id = insert_runs(tx, std::slice::from_ref(run), now)?[0];
    tx.prepare_cached("UPDATE JobRun SET uniqueKey = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, key]))
        .map_err(Error::db("enqueue unique run"))?;
    Ok(Keyed::Inserted(id))
}

fn live(tx: &Transaction<'_>, key: &str) -> Result<Option<i64>> {
    tx.prepare_cached(LIVE_SQL)
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(Error::db("look up unique key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::plans::explain;
    use crate::store::{Store, TestFile};

    #[test]
    fn the_look_up_uses_the_unique_index() {
        let file = TestFile::new("unique-plan");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        let plan = explain(&conn, LIVE_SQL).unwrap().join(" | ");
        assert!(plan.contains("JobRun_unique"), "{plan}");
        // The index itself refuses a second live run with a key; a
        // finished one does not hold it.
        conn.execute_batch(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, uniqueKey) \
             VALUES ('a', 'QUEUED', 'x', 'x', 'k'); \
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt, finishedAt, uniqueKey) \
             VALUES ('a', 'COMPLETED', 'x', 'x', 'x', 'k');",
        )
        .unwrap();
        let second = conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, uniqueKey) \
             VALUES ('a', 'SCHEDULED', 'x', 'x', 'k')",
            [],
        );
        assert!(second.is_err(), "refused by JobRun_unique");
    }

    /// The claim's update writes neither column `JobRun_unique` reads, so
    /// SQLite leaves a keyed run's entry alone: the statement's program
    /// has no instruction on that index. Before V18 the index's `WHERE`
    /// named `status`, and every claim of a keyed run rewrote its entry.
    #[test]
    fn the_claim_does_not_touch_the_unique_index() {
        let file = TestFile::new("unique-claim");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        let claim = "UPDATE JobRun NOT INDEXED SET status = 'RUNNING', workerId = 1, \
                     startedAt = 'x', updatedAt = 'x' WHERE id = 1 AND status = 'QUEUED'";
        let finish = "UPDATE JobRun NOT INDEXED SET status = 'COMPLETED', finishedAt = 'x', \
                      updatedAt = 'x' WHERE id = 1 AND status = 'RUNNING'";
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'JobRun_unique'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // EXPLAIN's columns: addr, opcode, p1, p2 (a cursor's root page).
        let opens_unique = |sql: &str| -> bool {
            let mut s = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let opens: Vec<(String, i64)> = s
                .query_map([], |r| Ok((r.get(1)?, r.get(3)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            opens
                .iter()
                .any(|(op, p2)| op.starts_with("Open") && *p2 == root)
        };
        assert!(!opens_unique(claim), "the claim opens JobRun_unique");
        // The finish does write finishedAt: it must keep the index right.
        assert!(opens_unique(finish), "the finish must remove the entry");
    }
}
