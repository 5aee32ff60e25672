//! The queries users run with sqlite3 work verbatim on a live database.
//! (That the hot queries use their indexes is a unit test of the store:
//! src/store/tests/plans.rs.)

mod common;

use std::time::Duration;

use common::TestDb;

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
