//! The queries users run with sqlite3 work verbatim on a live database, and
//! the hot queries use their indexes without sorting in a temporary B-tree.

mod common;

use std::time::Duration;

use common::TestDb;
use jobmgr::job::JobStatus;
use jobmgr::store::runs::{RunFilter, history_query};
use jobmgr::store::{self, batch::CLAIM_PLAN_SQL, insight, logs::RUN_LOG_PLAN_SQL};

#[test]
fn the_documented_queries_work_verbatim() {
    let db = TestDb::new("queries");
    let id = db.enqueue("demo-multi-phase", &["count=10", "delay_ms=1"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", Duration::from_secs(30));

    let q1 = format!(
        "SELECT level, stage, message, context, timestamp FROM JobLog WHERE jobRunId = {id} ORDER BY timestamp;"
    );
    let lines = db.query(&q1);
    assert!(lines.len() >= 5, "{lines:?}");
    assert_eq!(lines[0][0], "info");
    assert_eq!(lines[0][1], "Phase 1: Fetching");
    assert_eq!(lines[0][2], "Stage: Phase 1: Fetching");
    let stamps: Vec<&str> = lines.iter().map(|l| l[4].as_str().unwrap()).collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted);
    assert!(
        lines
            .iter()
            .any(|l| l[0] == "warning" && l[2] == "record 10 skipped: malformed")
    );

    let q2 = format!(
        "SELECT entitiesProcessed, entitiesTotal, outcomeSummary, currentStage FROM JobRun WHERE id = {id};"
    );
    let r = &db.query(&q2)[0];
    assert_eq!(r[0], 0, "the finalizing stage restarts the counter");
    assert_eq!(r[2], r#"{"errors":1,"inserts":3,"updates":6}"#);
    assert_eq!(r[3], "Phase 3: Finalizing");

    let q3 =
        "SELECT * FROM JobLog WHERE jobRunId = (SELECT MAX(id) FROM JobRun) ORDER BY timestamp;";
    assert_eq!(db.query(q3).len(), lines.len());
}

fn plan(db: &TestDb, sql: &str) -> String {
    let conn = store::open_connection(&db.path).unwrap();
    store::explain(&conn, sql).unwrap().join(" | ")
}

#[test]
fn hot_queries_use_indexes_and_sort_nothing() {
    let db = TestDb::new("plans");
    db.ok(&["migrate"]);
    let history = |f: RunFilter| history_query(&RunFilter { limit: 50, ..f }).0;
    let cases = [
        ("claim", CLAIM_PLAN_SQL.to_string(), "JobRun_queue"),
        ("run log", RUN_LOG_PLAN_SQL.to_string(), "JobLog_run_time"),
        ("history", history(RunFilter::default()), "JobRun"),
        (
            "history by status",
            history(RunFilter {
                statuses: vec![JobStatus::Failed],
                ..RunFilter::default()
            }),
            "JobRun_status_id",
        ),
        (
            "history by job type",
            history(RunFilter {
                name: Some("x".into()),
                ..RunFilter::default()
            }),
            "JobRun_name_id",
        ),
        (
            "a worker's running runs (cancel requests, recovery)",
            "SELECT id FROM JobRun WHERE workerId = 1 AND status = 'RUNNING' \
             AND cancelRequestedAt IS NOT NULL"
                .into(),
            "JobRun_status_id",
        ),
        (
            "change watcher: RUNNING runs updated since",
            format!("SELECT * {}", insight::RUNNING_SINCE),
            "JobRun_status_id",
        ),
        (
            "change watcher: runs finished since",
            format!("SELECT * {}", insight::FINISHED_AFTER),
            "JobRun_finished",
        ),
        (
            "change watcher: runs added since",
            "SELECT * FROM JobRun WHERE id >= 5 ORDER BY id LIMIT 1000".into(),
            "INTEGER PRIMARY KEY",
        ),
        (
            "documented log query",
            "SELECT level, stage, message, context, timestamp FROM JobLog WHERE jobRunId = 123 ORDER BY timestamp".into(),
            "JobLog_run_time",
        ),
        (
            "latest run's log query",
            "SELECT * FROM JobLog WHERE jobRunId = (SELECT MAX(id) FROM JobRun) ORDER BY timestamp".into(),
            "JobLog_run_time",
        ),
    ];
    for (what, sql, index) in cases {
        let p = plan(&db, &sql);
        assert!(p.contains(index), "{what} does not use {index}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{what} sorts: {p}");
    }
}
