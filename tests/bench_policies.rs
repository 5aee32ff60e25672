//! `jobmgr bench process-policies`: the `process` scenario with every run
//! policy present in the same database (unique-keyed runs, a paused type's
//! queued runs, a limited group's queued runs, WAITING runs) reports the
//! same fields as `process`, for 1 and 4 executors, and cleans up.

mod common;

use common::TestDb;
use serde_json::Value;

#[test]
fn process_policies_reports_the_process_fields() {
    let db = TestDb::new("bench-policies");
    let out = db.ok(&["bench", "--json", "--n", "300", "process-policies"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let workers: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap_or(""),
                r["workers"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        workers,
        [("process-policies", 1), ("process-policies", 4)],
        "{out}"
    );
    for r in &rows {
        assert_eq!(r["n"], 300, "{r}");
        for key in ["seconds", "rate", "maxrss_kb", "cpu_us", "per_commit"] {
            assert!(r[key].is_number(), "{key} missing in {r}");
        }
        let note = r["note"].as_str().unwrap_or("");
        assert!(
            note.contains("1000 queued paused (0 ran)") && note.contains("1000 waiting (0 ran)"),
            "{note}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&db.dir).expect("read dir").collect();
    assert!(left.is_empty(), "bench left {left:?}");
}
