//! Enqueueing many runs at once and from many threads at once: runs are
//! written many to a statement and callers share commits, and still every
//! caller gets the ids of exactly its own runs, in order.

use std::sync::Arc;
use std::thread;

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use super::EnqueueRequest;
use crate::job::Trigger;
use crate::jobs::builtin_registry;
use crate::manager::Manager;
use crate::store::{Store, TestFile};

/// A database of the test's own, and what `sqlite3` would read from it.
struct TestDb(TestFile);

impl TestDb {
    fn new(name: &str) -> TestDb {
        TestDb(TestFile::new(name))
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.0.db()).unwrap()
    }

    /// Every row of `sql`, each column as JSON.
    fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get::<_, Sql>(i)? {
                        Sql::Null => Value::Null,
                        Sql::Integer(v) => Value::from(v),
                        Sql::Real(v) => Value::from(v),
                        Sql::Text(v) => Value::from(v),
                        Sql::Blob(v) => Value::from(v),
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// The one value of `sql`, as text.
    fn scalar(&self, sql: &str) -> String {
        match &self.query(sql)[0][0] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

fn manager(db: &TestDb) -> Manager {
    Manager::new(
        Store::open(&db.0.db()).unwrap(),
        Arc::new(builtin_registry()),
        30_000,
        60_000,
    )
}

fn request(count: i64) -> EnqueueRequest {
    let mut parameters = Map::new();
    parameters.insert("count".into(), Value::from(count));
    EnqueueRequest {
        job_name: "demo-known-total".into(),
        parameters,
        priority: 0,
        trigger: Trigger::Api,
    }
}

fn count_of(db: &TestDb, id: i64) -> i64 {
    db.scalar(&format!(
        "SELECT json_extract(parameters, '$.count') FROM JobRun WHERE id = {id}"
    ))
    .parse()
    .unwrap()
}

#[test]
fn one_call_with_many_runs_returns_each_runs_id_in_order() {
    let db = TestDb::new("enqueue-many");
    let m = manager(&db);
    // 300 = chunks of 128, 128, 32, 8 and 4 rows.
    let reqs: Vec<EnqueueRequest> = (1..=300).map(request).collect();
    let ids = m.enqueue_many(&reqs).unwrap();
    assert_eq!(ids.len(), 300);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(count_of(&db, *id), i as i64 + 1, "run {id}");
    }
    assert_eq!(
        db.scalar("SELECT n FROM JobRunCount WHERE status = 'ALL'"),
        "300"
    );
}

#[test]
fn concurrent_callers_sharing_commits_each_get_their_own_ids() {
    let db = TestDb::new("enqueue-concurrent");
    let m = manager(&db);
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || {
                let mut mine = Vec::new();
                for k in 0..50i64 {
                    // Sometimes one run, sometimes three, in one call.
                    let n = if k % 5 == 0 { 3 } else { 1 };
                    let reqs: Vec<EnqueueRequest> =
                        (0..n).map(|j| request(t * 10_000 + k * 10 + j)).collect();
                    let ids = m.enqueue_many(&reqs).unwrap();
                    assert_eq!(ids.len(), reqs.len());
                    mine.extend(ids.into_iter().zip((0..n).map(|j| t * 10_000 + k * 10 + j)));
                }
                mine
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        for (id, count) in t.join().unwrap() {
            assert_eq!(count_of(&db, id), count, "run {id}");
            total += 1;
        }
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun")
            .parse::<usize>()
            .unwrap(),
        total
    );
}

#[test]
fn constraints_still_refuse_unknown_statuses_and_levels() {
    let db = TestDb::new("enqueue-checks");
    let m = manager(&db);
    let id = m.enqueue_many(&[request(1)]).unwrap()[0];
    let conn = db.conn();
    let bad_status = conn.execute(
        &format!("UPDATE JobRun SET status = 'DONE' WHERE id = {id}"),
        [],
    );
    assert!(
        bad_status.unwrap_err().to_string().contains("CHECK"),
        "an unknown status must be refused"
    );
    let bad_level = conn.execute(
        &format!(
            "INSERT INTO JobLog (jobRunId, level, message, timestamp) \
             VALUES ({id}, 'loud', 'x', '2026-01-01T00:00:00.000Z')"
        ),
        [],
    );
    assert!(bad_level.unwrap_err().to_string().contains("CHECK"));
    assert_eq!(db.scalar("SELECT status FROM JobRun"), "QUEUED");
}

/// Runs of one job type and trigger share one statement whose name,
/// trigger and metadata are bound once; a chunk that mixes them binds every
/// column per run. Either way each row gets its own values.
#[test]
fn mixed_and_uniform_chunks_store_every_runs_own_columns() {
    let db = TestDb::new("enqueue-mixed");
    let m = manager(&db);
    let triggers = [Trigger::Api, Trigger::Cli, Trigger::Ui];
    let mut reqs = Vec::new();
    // 200 uniform runs (128 + 64 + 8), then 200 that differ run to run.
    for i in 0..400i64 {
        let mut r = request(i);
        r.priority = i % 7 - 3;
        if i >= 200 {
            r.job_name = ["demo-known-total", "demo-multi-phase"][i as usize % 2].into();
            r.trigger = triggers[i as usize % 3];
        }
        reqs.push(r);
    }
    let ids = m.enqueue_many(&reqs).unwrap();
    let rows = db.query(&format!(
        "SELECT id, jobName, json_extract(parameters, '$.count'), priority, triggeredBy, \
         rerunOfId, json_extract(metadata, '$.enqueuedByVersion') IS NOT NULL \
         FROM JobRun WHERE id BETWEEN {} AND {} ORDER BY id",
        ids[0], ids[399]
    ));
    assert_eq!(rows.len(), 400);
    for ((row, id), r) in rows.iter().zip(&ids).zip(&reqs) {
        let want = serde_json::json!([
            id,
            r.job_name,
            r.parameters["count"],
            r.priority,
            r.trigger.as_str(),
            null,
            1
        ]);
        assert_eq!(Value::from(row.clone()), want);
    }
}

/// An enqueue answers with the run it inserted without reading it back:
/// what it returns must be exactly the stored row, for a queued run, a
/// scheduled one and a re-run.
#[test]
fn an_enqueue_returns_the_run_exactly_as_stored() {
    let db = TestDb::new("asstored");
    let m = manager(&db);
    let by = crate::manager::Actor::cli();
    let mut req = request(3);
    req.priority = 7;
    let queued = m.enqueue_at(&req, None, &by).unwrap();
    assert_eq!(queued, m.get(queued.id).unwrap());
    let later = crate::clock::Timestamp::now().plus_ms(3_600_000);
    let scheduled = m.enqueue_at(&request(4), Some(later), &by).unwrap();
    assert_eq!(scheduled.status, crate::job::JobStatus::Scheduled);
    assert_eq!(scheduled, m.get(scheduled.id).unwrap());
    m.cancel(queued.id, &by).unwrap();
    let rerun = m.rerun(queued.id, Trigger::Rerun, &by).unwrap();
    assert_eq!(rerun.rerun_of_id, Some(queued.id));
    assert_eq!(rerun, m.get(rerun.id).unwrap());
}

/// One acknowledged enqueue per commit writes the run's row and its one
/// index entry (`JobRun_queue_type`), not the QUEUED entry of
/// `JobRun_status_id` nor a counter page (V20) nor one in `JobRun_name_id`
/// (V23): at most 2.5 WAL pages per enqueue with SQLite's re-spreading of
/// the index's last leaf, where it wrote 5.5 and then 3.4.
#[test]
fn one_enqueue_per_commit_writes_at_most_two_and_a_half_wal_pages() {
    let db = TestDb::new("enqueue-pages");
    let m = manager(&db);
    let one = |i| m.enqueue_many(&[request(i)]).unwrap();
    for i in 0..300 {
        one(i);
    }
    let conn = db.conn();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not empty the WAL");
    let wal = db.0.db().with_extension("db-wal");
    let n = 200;
    for i in 0..n {
        one(i);
    }
    let bytes = std::fs::metadata(&wal).unwrap().len() as i64;
    // A 32-byte header, then a 24-byte header per frame.
    let frames = (bytes - 32) / (page + 24);
    let per = frames as f64 / n as f64;
    assert!(
        per <= 2.5,
        "{per:.2} WAL pages per enqueue ({frames} for {n})"
    );
}
