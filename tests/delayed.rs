//! Delayed runs: `enqueue --at/--in` and the API's `runAt` make a SCHEDULED
//! run that the worker queues and claims when its time comes, on the clock
//! the test drives (no real waiting). Observed through the CLI, the API
//! and the SQLite file.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::clock::{DrivenClock, timestamp_text as text};
use common::{TestDb, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
/// 2031-05-06T07:08:09.000Z: no real timestamp is near it.
const T_MS: i64 = 1_935_817_689_000;

fn cmd(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> Command {
    let mut c = db.cmd();
    clock.apply(&mut c).args(args).stdin(Stdio::null());
    c
}

fn run(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> Output {
    cmd(db, clock, args).output().expect("run jobmgr")
}

fn ok(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> String {
    let out = run(db, clock, args);
    assert!(
        out.status.success(),
        "jobmgr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn enqueue(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> i64 {
    let mut all = vec!["enqueue", "demo-known-total", "-p", "count=1"];
    all.extend_from_slice(args);
    ok(db, clock, &all).parse().expect("enqueue prints the id")
}

fn row(db: &TestDb, id: i64, cols: &str) -> Vec<String> {
    db.query(&format!("SELECT {cols} FROM JobRun WHERE id = {id}"))[0]
        .iter()
        .map(|v| v.as_str().unwrap_or("NULL").to_string())
        .collect()
}

#[test]
fn a_delayed_run_waits_as_scheduled_until_the_clock_reaches_its_time() {
    let db = TestDb::new("delayed-in");
    let clock = DrivenClock::new(&db, T_MS);
    let later = enqueue(&db, &clock, &["--in", "90s"]);
    let at = enqueue(&db, &clock, &["--at", "2031-05-06T09:10:00+02:00"]);
    let past = enqueue(&db, &clock, &["--at", "2031-05-06T07:00:00Z"]);
    assert_eq!(
        row(&db, later, "status, runAt"),
        ["SCHEDULED", &text(T_MS + 90_000)]
    );
    assert_eq!(
        row(&db, at, "status, runAt"),
        ["SCHEDULED", "2031-05-06T07:10:00.000Z"]
    );
    assert_eq!(row(&db, past, "status, runAt"), ["QUEUED", "NULL"]);
    let listed = ok(&db, &clock, &["jobs", "--status", "SCHEDULED", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("jobs --json");
    let ids: Vec<i64> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [at, later]);
    let status: serde_json::Value =
        serde_json::from_str(&ok(&db, &clock, &["status", "--json"])).expect("status --json");
    assert_eq!(status["counts"]["byStatus"]["SCHEDULED"], 2, "{status}");
    assert_eq!(status["counts"]["byStatus"]["QUEUED"], 1, "{status}");

    let _w = db.spawn_worker_cmd(cmd(&db, &clock, &["worker"]), "worker.log");
    db.wait_status(past, "COMPLETED", WAIT);
    // The worker is up and idle; its clock has not reached either time.
    wait_for("a heartbeat", WAIT, || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    assert_eq!(db.status_of(later), "SCHEDULED");
    clock.advance(90_000);
    db.wait_status(later, "COMPLETED", WAIT);
    assert_eq!(
        row(&db, later, "startedAt"),
        [text(T_MS + 90_000)],
        "started at its time, by the worker's clock"
    );
    assert_eq!(db.status_of(at), "SCHEDULED");
    clock.set(T_MS + 121_000);
    db.wait_status(at, "COMPLETED", WAIT);
}

#[test]
fn a_due_run_is_claimed_in_priority_order_with_the_queue() {
    let db = TestDb::new("delayed-order");
    let clock = DrivenClock::new(&db, T_MS);
    let queued = enqueue(&db, &clock, &["--priority", "1"]);
    let urgent = enqueue(&db, &clock, &["--priority", "5", "--in", "10s"]);
    clock.advance(11_000);
    // One executor: the order of startedAt is the order of claims.
    let _w = db.spawn_worker_cmd(
        cmd(&db, &clock, &["worker", "--concurrency", "1"]),
        "worker.log",
    );
    db.wait_status(queued, "COMPLETED", WAIT);
    db.wait_status(urgent, "COMPLETED", WAIT);
    // The clock stands still, so the times tie: the log shows the order.
    let first = db.scalar("SELECT jobRunId FROM JobLog ORDER BY id LIMIT 1");
    assert_eq!(
        first,
        urgent.to_string(),
        "the due run of priority 5 went first"
    );
}

#[test]
fn a_scheduled_run_can_be_cancelled_and_never_runs() {
    let db = TestDb::new("delayed-cancel");
    let clock = DrivenClock::new(&db, T_MS);
    let id = enqueue(&db, &clock, &["--in", "1m"]);
    let out = ok(&db, &clock, &["cancel", &id.to_string()]);
    assert!(out.to_lowercase().contains("cancel"), "{out}");
    assert_eq!(
        row(&db, id, "status, error"),
        ["CANCELLED", "cancelled before it started"]
    );
    let marker = enqueue(&db, &clock, &["--in", "2m"]);
    let _w = db.spawn_worker_cmd(cmd(&db, &clock, &["worker"]), "worker.log");
    clock.advance(180_000);
    db.wait_status(marker, "COMPLETED", WAIT);
    assert_eq!(db.status_of(id), "CANCELLED");
    assert_eq!(row(&db, id, "startedAt"), ["NULL"]);
    // A re-run keeps the parameters and runs now.
    let again: i64 = ok(&db, &clock, &["rerun", &id.to_string()])
        .lines()
        .find_map(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
        .expect("rerun prints the new id");
    db.wait_status(again, "COMPLETED", WAIT);
    assert_eq!(row(&db, again, "parameters"), row(&db, id, "parameters"));
}

#[test]
fn bad_times_and_delays_are_refused_with_a_clear_message() {
    let db = TestDb::new("delayed-bad");
    let clock = DrivenClock::new(&db, T_MS);
    for (args, says) in [
        (vec!["--at", "2031-05-06T09:10:00"], "zone"),
        (
            vec!["--at", "2031-05-06T09:10 Mars/Olympus"],
            "unknown time zone",
        ),
        (
            vec!["--at", "2031-03-30T02:30 Europe/Berlin"],
            "does not exist",
        ),
        (vec!["--in", "10 minutes"], "delay"),
        (vec!["--in", "5000000d"], "100 years"),
    ] {
        let mut all = vec!["enqueue", "demo-known-total"];
        all.extend_from_slice(&args);
        let out = run(&db, &clock, &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let both = run(
        &db,
        &clock,
        &[
            "enqueue",
            "demo-known-total",
            "--in",
            "1s",
            "--at",
            "2031-05-06T09:10:00Z",
        ],
    );
    assert!(!both.status.success());
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        "0",
        "nothing was enqueued"
    );
}

#[test]
fn the_api_takes_run_at_and_refuses_what_it_cannot_read() {
    let db = TestDb::new("delayed-api");
    let clock = DrivenClock::new(&db, T_MS);
    let serve = db.spawn_server(
        cmd(
            &db,
            &clock,
            &["serve", "--bind", "127.0.0.1:0", "--no-worker"],
        ),
        db.dir.join("serve.log"),
    );
    let r = serve.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "runAt": "2031-05-06T08:00:00Z"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let run = &r.json()["run"];
    assert_eq!(run["status"], "SCHEDULED");
    assert_eq!(run["runAt"], "2031-05-06T08:00:00.000Z");
    assert_eq!(
        run["progressText"],
        "Scheduled for 2031-05-06T08:00:00.000Z"
    );
    for bad in [
        "tomorrow",
        "2031-05-06T08:00:00",
        "2031-05-06T08:00 Nowhere/City",
    ] {
        let r = serve.api.post(
            "/api/jobs",
            &json!({"jobName": "demo-known-total", "runAt": bad}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("runAt"),
            "{bad}: {}",
            r.text()
        );
    }
    let r = serve.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "runAt": 5}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "1");
    let id = run["id"].as_i64().expect("id");
    let r = serve
        .api
        .post(&format!("/api/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(db.status_of(id), "CANCELLED");
}
