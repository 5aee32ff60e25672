//! Concurrency limits and paused types through the CLI and the SQLite
//! file: `max_running` per type and per group honoured by the claim while
//! the database is polled, runs behind a full limit not blocking other
//! types, and `pause`/`resume` (audited, shown by `job-types`).

mod common;

use std::time::Duration;

use common::{TestDb, poll_until, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn write_config(db: &TestDb, text: &str) {
    std::fs::write(db.dir.join("jobmgr.toml"), text).expect("write config");
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).parse().expect("a count")
}

/// Polls until every run is finished, returning the most RUNNING at once
/// among `types` seen on any look.
fn most_running_until_done(db: &TestDb, types: &str) -> i64 {
    let mut most = 0;
    let done = poll_until(WAIT, || {
        let running = count(
            db,
            &format!(
                "SELECT count(*) FROM JobRun WHERE status = 'RUNNING' AND jobName IN ({types})"
            ),
        );
        most = most.max(running);
        count(
            db,
            "SELECT count(*) FROM JobRun WHERE status NOT IN ('COMPLETED')",
        ) == 0
    });
    assert!(
        done,
        "every run completed: {:?}",
        db.query("SELECT id, jobName, status FROM JobRun")
    );
    most
}

#[test]
fn max_running_one_with_concurrency_four_never_runs_two_and_blocks_no_other_type() {
    let db = TestDb::new("lim-type");
    write_config(&db, "[policies.demo-known-total]\nmax_running = 1\n");
    let limited: Vec<i64> = (0..6)
        .map(|_| db.enqueue("demo-known-total", &["count=4", "delay_ms=60"]))
        .collect();
    let other: Vec<i64> = (0..3)
        .map(|_| db.enqueue("demo-unknown-total", &["count=4", "delay_ms=60"]))
        .collect();
    let _w = db.spawn_worker(&["--concurrency", "4"]);
    let most = most_running_until_done(&db, "'demo-known-total'");
    assert_eq!(most, 1, "at most one demo-known-total RUNNING at any look");
    // The other type was not held behind the limited one's queue: all of
    // its runs ended before the last limited one started.
    let last_limited_start = db.scalar(&format!(
        "SELECT max(startedAt) FROM JobRun WHERE id IN ({})",
        limited
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
    for id in other {
        let end = db.scalar(&format!("SELECT finishedAt FROM JobRun WHERE id = {id}"));
        assert!(
            end < last_limited_start,
            "run {id} ended {end}, last limited start {last_limited_start}"
        );
    }
}

#[test]
fn a_group_limit_holds_across_two_types() {
    let db = TestDb::new("lim-group");
    write_config(
        &db,
        "[groups.disk-heavy]\nmax_running = 1\n\n\
         [policies.demo-known-total]\ngroup = \"disk-heavy\"\n\n\
         [policies.demo-unknown-total]\ngroup = \"disk-heavy\"\n",
    );
    for _ in 0..3 {
        db.enqueue("demo-known-total", &["count=3", "delay_ms=60"]);
        db.enqueue("demo-unknown-total", &["count=3", "delay_ms=60"]);
    }
    let free = db.enqueue("demo-multi-phase", &["count=20", "delay_ms=30"]);
    let _w = db.spawn_worker(&["--concurrency", "4"]);
    let most = most_running_until_done(&db, "'demo-known-total', 'demo-unknown-total'");
    assert_eq!(most, 1, "at most one run of the group RUNNING at any look");
    // The type outside the group ran beside the group's runs.
    let overlapped = count(
        &db,
        &format!(
            "SELECT count(*) FROM JobRun a, JobRun f WHERE f.id = {free} AND a.id <> f.id \
             AND a.startedAt < f.finishedAt AND a.finishedAt > f.startedAt"
        ),
    );
    assert!(overlapped > 0, "demo-multi-phase overlapped a group run");
}

#[test]
fn a_paused_type_waits_while_others_run_until_it_is_resumed() {
    let db = TestDb::new("lim-pause");
    db.ok(&["migrate"]);
    let out = db.ok(&["pause", "demo-known-total"]);
    assert_eq!(out, "job type demo-known-total paused; 0 queued run(s)");
    let held: Vec<i64> = (0..2)
        .map(|_| db.enqueue("demo-known-total", &["count=1", "delay_ms=1"]))
        .collect();
    let _w = db.spawn_worker(&["--concurrency", "4"]);
    let first = db.enqueue("demo-unknown-total", &["count=1", "delay_ms=1"]);
    db.wait_status(first, "COMPLETED", WAIT);
    // A second run enqueued and completed after the first: the worker has
    // made several claims since the pause, and the held runs still wait.
    let second = db.enqueue("demo-unknown-total", &["count=1", "delay_ms=1"]);
    db.wait_status(second, "COMPLETED", WAIT);
    for id in &held {
        assert_eq!(db.status_of(*id), "QUEUED");
    }
    let types = db.ok(&["job-types"]);
    assert!(types.contains("PAUSED, 2 queued run(s) waiting"), "{types}");
    let json: Value = serde_json::from_str(&db.ok(&["--json", "job-types"])).expect("json");
    let t = json
        .as_array()
        .expect("an array")
        .iter()
        .find(|t| t["name"] == "demo-known-total")
        .expect("listed")
        .clone();
    assert_eq!(
        (t["paused"].clone(), t["queued"].clone()),
        (Value::from(true), Value::from(2))
    );
    // An unknown type is refused with a suggestion.
    let err = db.fails(&["pause", "demo-known-totl"]);
    assert!(err.contains("did you mean 'demo-known-total'"), "{err}");

    let out = db.ok(&["resume", "demo-known-total"]);
    assert_eq!(out, "job type demo-known-total resumed; 2 queued run(s)");
    for id in &held {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    wait_for("the audit rows", WAIT, || {
        db.query("SELECT action FROM Audit WHERE action LIKE 'jobtype.%' ORDER BY id")
            == vec![
                vec![Value::from("jobtype.pause")],
                vec![Value::from("jobtype.resume")],
            ]
    });
}

#[test]
fn pause_resume_and_the_waiting_run_actions_through_the_api() {
    let db = TestDb::new("lim-api");
    let serve = db.spawn_serve(&["--no-worker"]);
    let id = db.enqueue("demo-known-total", &[]);
    let r = serve.api.post(
        "/api/job-types/demo-known-total/pause",
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["paused"].clone(),
            r.json()["changed"].clone(),
            r.json()["queued"].clone()
        ),
        (Value::from(true), Value::from(true), Value::from(1))
    );
    let types = serve.api.ok("/api/job-types");
    let t = types["jobTypes"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["name"] == "demo-known-total")
        .expect("listed")
        .clone();
    assert_eq!(
        (t["paused"].clone(), t["queued"].clone()),
        (Value::from(true), Value::from(1))
    );
    let r = serve.api.post(
        "/api/job-types/demo-known-total/resume",
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["paused"], false);
    let r = serve
        .api
        .post("/api/job-types/no-such-type/pause", &serde_json::json!({}));
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    // A QUEUED run is not waiting for a retry: 409 with a message.
    for action in ["retry-now", "give-up"] {
        let r = serve
            .api
            .post(&format!("/api/jobs/{id}/{action}"), &serde_json::json!({}));
        assert_eq!(r.status, 409, "{action}: {}", r.text());
        assert!(
            r.text().contains("is QUEUED and not waiting for a retry"),
            "{}",
            r.text()
        );
    }
    let audit =
        db.query("SELECT action, source FROM Audit WHERE action LIKE 'jobtype.%' ORDER BY id");
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_ne!(
        audit[0][1],
        Value::from("cli"),
        "recorded as the API's: {audit:?}"
    );
}
