//! Dependencies through the CLI and the SQLite file: `--after` makes a run
//! wait as WAITING until the runs it names all COMPLETED; a failed one
//! cancels it (and what waits for it), naming the run; both directions are
//! shown by `show`.

mod common;

use std::time::Duration;

use common::TestDb;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn col(db: &TestDb, id: i64, c: &str) -> String {
    db.scalar(&format!("SELECT {c} FROM JobRun WHERE id = {id}"))
}

fn after(db: &TestDb, name: &str, params: &[&str], ids: &str) -> i64 {
    let mut args = vec!["enqueue", name, "--after", ids];
    for p in params {
        args.push("-p");
        args.push(p);
    }
    db.ok(&args).parse().expect("enqueue prints the id")
}

#[test]
fn a_chain_of_three_runs_in_order() {
    let db = TestDb::new("deps-chain");
    let a = db.enqueue("demo-known-total", &["count=3", "delay_ms=30"]);
    let b = after(
        &db,
        "demo-unknown-total",
        &["count=3", "delay_ms=30"],
        &a.to_string(),
    );
    let c = after(&db, "demo-known-total", &["count=1"], &format!("{a},{b}"));
    assert_eq!(col(&db, b, "status"), "WAITING");
    assert_eq!(col(&db, c, "status"), "WAITING");
    let status: Value = serde_json::from_str(&db.ok(&["--json", "status"])).expect("json");
    assert_eq!(status["counts"]["byStatus"]["WAITING"], 2, "{status}");
    let _w = db.spawn_worker(&["--concurrency", "4"]);
    db.wait_status(c, "COMPLETED", WAIT);
    assert!(
        col(&db, b, "startedAt") >= col(&db, a, "finishedAt"),
        "b after a"
    );
    assert!(
        col(&db, c, "startedAt") >= col(&db, b, "finishedAt"),
        "c after b"
    );
    let shown: Value =
        serde_json::from_str(&db.ok(&["--json", "show", &b.to_string()])).expect("json");
    assert_eq!(shown["after"][0]["id"], a, "{shown}");
    assert_eq!(shown["waitedForBy"][0]["id"], c, "{shown}");
    let text = db.ok(&["show", &c.to_string()]);
    assert!(
        text.contains(&format!(
            "after:       {a} (demo-known-total, COMPLETED), {b} (demo-unknown-total, COMPLETED)"
        )),
        "{text}"
    );
    assert_eq!(
        db.scalar("SELECT n FROM JobRunCount WHERE status = 'WAITING'"),
        "0"
    );
}

#[test]
fn a_failed_run_cancels_what_waits_for_it_naming_it() {
    let db = TestDb::new("deps-failed");
    let f = db.enqueue("demo-multi-phase", &["count=2", "delay_ms=1", "fail_at=1"]);
    let g = after(&db, "demo-known-total", &["count=1"], &f.to_string());
    let h = after(&db, "demo-known-total", &["count=1"], &g.to_string());
    let _w = db.spawn_worker(&[]);
    db.wait_status(h, "CANCELLED", WAIT);
    assert_eq!(col(&db, f, "status"), "FAILED");
    assert_eq!(
        col(&db, g, "status || ': ' || error"),
        format!("CANCELLED: run {f} it waited for is FAILED")
    );
    assert_eq!(
        col(&db, h, "error"),
        format!("run {g} it waited for is CANCELLED")
    );
    assert!(db.query(&format!("SELECT startedAt FROM JobRun WHERE id = {g}"))[0][0].is_null());
    // Only existing, still hopeful runs can be named.
    let err = db.fails(&["enqueue", "demo-known-total", "--after", "9999"]);
    assert!(err.contains("9999"), "{err}");
    let err = db.fails(&["enqueue", "demo-known-total", "--after", &f.to_string()]);
    assert!(
        err.contains(&format!(
            "run {f} is FAILED, so a run after it could never start"
        )),
        "{err}"
    );
    // A waiting run can be cancelled by hand.
    let slow = db.enqueue("demo-known-total", &["count=1000", "delay_ms=50"]);
    let w = after(&db, "demo-known-total", &["count=1"], &slow.to_string());
    db.ok(&["cancel", &w.to_string()]);
    assert_eq!(col(&db, w, "status"), "CANCELLED");
    db.ok(&["cancel", &slow.to_string()]);
}

#[test]
fn a_run_cancelled_while_no_worker_runs_cancels_its_waiting_run_when_one_starts() {
    let db = TestDb::new("deps-offline");
    let a = db.enqueue("demo-known-total", &["count=1"]);
    let b = after(&db, "demo-known-total", &["count=1"], &a.to_string());
    db.ok(&["cancel", &a.to_string()]);
    assert_eq!(col(&db, b, "status"), "WAITING");
    let _w = db.spawn_worker(&[]);
    db.wait_status(b, "CANCELLED", WAIT);
    assert_eq!(
        col(&db, b, "error"),
        format!("run {a} it waited for is CANCELLED")
    );
}
