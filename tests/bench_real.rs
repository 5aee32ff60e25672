//! `jobmgr bench process-real`: real `demo-quick` runs drained by a real
//! `jobmgr worker` child, with 1 and 4 executors, reporting the child's CPU
//! and commits; and `demo-quick` itself, the run it drains: a total,
//! progress, and two log lines with a JSON context.

mod common;

use std::time::Duration;

use common::TestDb;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn process_real_drains_real_runs_through_a_worker_child_and_reports_its_figures() {
    let db = TestDb::new("bench-real");
    let out = db.ok(&["bench", "--json", "--n", "300", "process-real"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let modes: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["mode"].as_str().unwrap_or(""),
                r["workers"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(modes, [("process-real", 1), ("process-real", 4)], "{out}");
    for r in &rows {
        assert_eq!(r["n"], 300, "{r}");
        assert_eq!(r["synchronous"], "FULL", "{r}");
        for key in ["seconds", "rate", "maxrss_kb", "cpu_us"] {
            assert!(r[key].is_number(), "{key} missing in {r}");
        }
        assert!(r["rate"].as_f64().unwrap() > 0.0, "{r}");
        // The child's peak memory, not this process's: a worker holds a
        // few MB at least.
        assert!(r["maxrss_kb"].as_u64().unwrap() > 1000, "{r}");
        // Commits come from the child's high-water mark: each run is
        // claimed and finished in at most two of them, and 300 runs take
        // more than one.
        let per = r["per_commit"].as_f64().expect("per_commit");
        assert!((0.5..300.0).contains(&per), "{r}");
        let note = r["note"].as_str().unwrap();
        assert!(note.contains("demo-quick"), "{r}");
        // Where the child's time went, by thread: the writer's share is
        // the ceiling whatever the concurrency.
        assert!(note.contains("its writer thread"), "{r}");
        assert!(note.contains("its executors"), "{r}");
    }
    let left: Vec<_> = std::fs::read_dir(&db.dir).expect("read dir").collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

#[test]
fn bench_help_lists_process_real() {
    let db = TestDb::new("bench-real-help");
    let help = db.ok(&["bench", "--help"]);
    assert!(help.contains("process-real"), "{help}");
}

#[test]
fn demo_quick_sets_a_total_counts_its_items_and_logs_two_lines_with_context() {
    let db = TestDb::new("demo-quick");
    let one = db.enqueue("demo-quick", &[]);
    let three = db.enqueue("demo-quick", &["count=3"]);
    let _w = db.spawn_worker(&["--concurrency", "2"]);
    for id in [one, three] {
        db.wait_status(id, "COMPLETED", WAIT);
    }
    let progress = |id: i64| {
        db.query(&format!(
            "SELECT entitiesProcessed, entitiesTotal, entitiesUnit FROM JobRun WHERE id = {id}"
        ))
    };
    assert_eq!(
        progress(one),
        [[Value::from(1), Value::from(1), Value::from("items")]]
    );
    assert_eq!(
        progress(three),
        [[Value::from(3), Value::from(3), Value::from("items")]]
    );
    let lines = |id: i64| {
        db.query(&format!(
            "SELECT level, message, context FROM JobLog WHERE jobRunId = {id} ORDER BY id"
        ))
    };
    assert_eq!(
        lines(three),
        [
            [
                Value::from("info"),
                Value::from("processing 3 items"),
                Value::from(r#"{"total":3}"#)
            ],
            [
                Value::from("info"),
                Value::from("done: 3 items processed"),
                Value::from(r#"{"processed":3}"#)
            ]
        ]
    );
    assert_eq!(lines(one).len(), 2);
}
