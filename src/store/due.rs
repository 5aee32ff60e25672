//! Runs that wait for a time: SCHEDULED runs become QUEUED when their
//! `runAt` comes. The worker's writer does it inside its group commit, so
//! a due run is queued and claimed in the same transaction, and asks only
//! for the earliest due time in between (one probe of `JobRun_due`): any
//! number of runs waiting for later costs the claim nothing.

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobStatus;

/// The earliest due time: the first entry of the partial index.
const NEXT_DUE_SQL: &str =
    "SELECT min(runAt) FROM JobRun INDEXED BY JobRun_due WHERE status = 'SCHEDULED'";
/// The due runs: a range of the partial index, from its start.
const QUEUE_DUE_SQL: &str = "UPDATE JobRun INDEXED BY JobRun_due SET status = 'QUEUED', updatedAt = ?1 \
     WHERE status = 'SCHEDULED' AND runAt <= ?1";

/// The earliest `runAt` of a SCHEDULED run, if there is one.
pub fn next_due(conn: &Connection) -> Result<Option<Timestamp>> {
    let text: Option<String> = conn
        .prepare_cached(NEXT_DUE_SQL)
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(Error::db("find the next due run"))?
        .flatten();
    Ok(text.as_deref().and_then(Timestamp::parse))
}

/// Queues every SCHEDULED run whose `runAt` is at or before `now`; returns
/// how many. Their ids keep their place: among runs of one priority, the
/// one enqueued first is claimed first, whenever it became due.
pub fn queue_due(tx: &Transaction<'_>, now: &str) -> Result<usize> {
    let n = tx
        .prepare_cached(QUEUE_DUE_SQL)
        .and_then(|mut s| s.execute([now]))
        .map_err(Error::db("queue due runs"))?;
    if super::counts::by_hand(tx)? {
        super::counts::add_status(tx, JobStatus::Scheduled, -(n as i64))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::plans::explain;
    use crate::store::{Store, TestFile, write_on};

    fn scheduled(conn: &Connection, at: &str) {
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, runAt) \
             VALUES ('a', 'SCHEDULED', ?1, ?1, ?1)",
            [at],
        )
        .unwrap();
    }

    #[test]
    fn both_queries_use_the_due_index_without_sorting() {
        let file = TestFile::new("due-plan");
        let store = Store::open(&file.db()).unwrap();
        let conn = store.conn().unwrap();
        for sql in [NEXT_DUE_SQL, QUEUE_DUE_SQL] {
            let plan = explain(&conn, sql).unwrap().join(" | ");
            assert!(plan.contains("JobRun_due"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            assert!(!plan.contains("SCAN JobRun"), "{sql}: {plan}");
        }
    }

    #[test]
    fn only_runs_whose_time_came_are_queued() {
        let file = TestFile::new("due");
        let store = Store::open(&file.db()).unwrap();
        let mut conn = store.conn().unwrap();
        assert_eq!(next_due(&conn).unwrap(), None);
        for at in [
            "2030-01-01T00:00:02.000Z",
            "2030-01-01T00:00:01.000Z",
            "2030-01-01T00:00:03.000Z",
        ] {
            scheduled(&conn, at);
        }
        let first = Timestamp::parse("2030-01-01T00:00:01.000Z");
        assert_eq!(next_due(&conn).unwrap(), first);
        let n = write_on(&mut conn, "queue", |tx| {
            queue_due(tx, "2030-01-01T00:00:02.000Z")
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            next_due(&conn).unwrap(),
            Timestamp::parse("2030-01-01T00:00:03.000Z")
        );
        let counted: i64 = conn
            .query_row(
                "SELECT n FROM JobRunCount WHERE status = 'SCHEDULED'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counted, 1, "the triggers keep the SCHEDULED counter");
    }
}
