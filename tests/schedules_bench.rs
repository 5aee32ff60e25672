//! `jobmgr bench schedules` measures the scheduler's decision pass and
//! reports it like the other scenarios.

mod common;

use common::TestDb;
use serde_json::Value;

#[test]
fn the_schedules_scenario_reports_its_passes() {
    let db = TestDb::new("bench-schedules");
    let out = db.ok(&["bench", "--json", "--n", "300", "schedules"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(
        modes,
        [
            "schedules-first-pass",
            "schedules-idle-pass",
            "schedules-due-pass",
            "schedules-all-due-pass"
        ]
    );
    assert_eq!(rows[0]["n"], 300, "one per schedule");
    assert_eq!(
        rows[2]["n"], 5,
        "300 schedules hourly at minute i % 60: 5 at minute 1"
    );
    assert_eq!(
        rows[3]["n"], 300,
        "an hour later, every schedule had a due time"
    );
    assert!(rows[1]["note"].as_str().unwrap().contains("goal < 5 ms"));
    for r in &rows {
        assert!(r["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{r}");
        assert_eq!(r["synchronous"], "FULL");
    }
    let left: Vec<_> = std::fs::read_dir(&db.dir).unwrap().collect();
    assert!(left.is_empty(), "bench left {left:?}");
}
