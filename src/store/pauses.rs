//! Paused job types (`JobTypePause`): their queued runs wait, the others
//! run. The worker's writer reads the set again whenever another process
//! committed, so a pause or resume takes effect on its next claim.

use rusqlite::{Connection, Transaction, params};

use crate::error::{Error, Result};

/// The paused types, by name.
pub fn paused(conn: &Connection) -> Result<Vec<String>> {
    conn.prepare_cached("SELECT jobName FROM JobTypePause ORDER BY jobName")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(Error::db("read paused job types"))
}

/// Pauses `name`; false when it already was.
pub fn pause(tx: &Transaction<'_>, name: &str, now: &str) -> Result<bool> {
    tx.prepare_cached("INSERT OR IGNORE INTO JobTypePause (jobName, pausedAt) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![name, now]))
        .map(|n| n == 1)
        .map_err(Error::db("pause job type"))
}

/// Resumes `name`; false when it was not paused.
pub fn resume(tx: &Transaction<'_>, name: &str) -> Result<bool> {
    tx.prepare_cached("DELETE FROM JobTypePause WHERE jobName = ?1")
        .and_then(|mut s| s.execute([name]))
        .map(|n| n == 1)
        .map_err(Error::db("resume job type"))
}

/// How many runs of each type are QUEUED (types with none left out).
pub fn queued_by_type(conn: &Connection) -> Result<Vec<(String, i64)>> {
    conn.prepare_cached(
        "SELECT jobName, count(*) FROM JobRun INDEXED BY JobRun_queue_type \
         WHERE status = 'QUEUED' GROUP BY jobName",
    )
    .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
    .map_err(Error::db("count queued runs by type"))
}

#[cfg(test)]
mod tests {
    use crate::store::batch::TYPE_QUEUE_SQL;
    use crate::store::tests::plans::explain;
    use crate::store::{Store, TestFile};

    #[test]
    fn the_per_type_claim_and_the_plain_one_use_their_indexes_without_sorting() {
        let file = TestFile::new("limits-plan");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        let plan = explain(&conn, TYPE_QUEUE_SQL).unwrap().join(" | ");
        assert!(plan.contains("JobRun_queue_type"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        let plain = explain(&conn, crate::store::batch::CLAIM_PLAN_SQL)
            .unwrap()
            .join(" | ");
        assert!(plain.contains("JobRun_queue_type"), "{plain}");
        assert!(!plain.contains("TEMP B-TREE"), "{plain}");
    }
}
