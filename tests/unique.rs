//! Unique runs through the CLI, the HTTP API and the SQLite file:
//! `--unique-key`, the API's `uniqueKey` and a type's `unique` parameters
//! return the live run instead of making a second, also when 50 processes
//! enqueue the same key at once; a finished run frees its key.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::TestDb;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn fifty_concurrent_enqueues_of_one_key_make_exactly_one_run() {
    let db = TestDb::new("uniq-50");
    db.ok(&["migrate"]);
    let outputs: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    let out = db
                        .cmd()
                        .args([
                            "--json",
                            "enqueue",
                            "demo-known-total",
                            "--unique-key",
                            "nightly",
                        ])
                        .output()
                        .expect("run jobmgr");
                    assert!(
                        out.status.success(),
                        "exit 0 for every caller: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    serde_json::from_slice::<Value>(&out.stdout).expect("json")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ids: HashSet<i64> = outputs
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1, "one id for all 50: {ids:?}");
    let id = *ids.iter().next().expect("an id");
    let duplicates = outputs.iter().filter(|o| o["duplicateOf"] == id).count();
    assert_eq!(
        duplicates, 49,
        "all but the first were told it was a duplicate"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "1");
    assert_eq!(db.scalar("SELECT uniqueKey FROM JobRun"), "nightly");
    assert_eq!(
        db.scalar("SELECT count(*) FROM Audit WHERE action = 'run.enqueue'"),
        "1",
        "only the run made is audited"
    );
    // The text form prints the existing id; once it finished, the key is free.
    assert_eq!(
        db.ok(&["enqueue", "demo-known-total", "--unique-key", "nightly"]),
        id.to_string()
    );
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", WAIT);
    let next = db.ok(&["enqueue", "demo-known-total", "--unique-key", "nightly"]);
    assert_ne!(next, id.to_string(), "a finished run frees its key");
}

#[test]
fn the_api_and_a_types_unique_parameters_return_the_live_run() {
    let db = TestDb::new("uniq-api");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[policies.demo-known-total]\nunique = [\"count\"]\n",
    )
    .expect("write config");
    let serve = db.spawn_serve(&["--no-worker"]);
    let body = json!({"jobName": "demo-unknown-total", "uniqueKey": "import-42"});
    let first = serve.api.post("/api/jobs", &body);
    assert_eq!(first.status, 201, "{}", first.text());
    let id = first.json()["run"]["id"].as_i64().expect("id");
    let again = serve.api.post("/api/jobs", &body);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["duplicateOf"], id);
    assert_eq!(again.json()["run"]["id"], id);
    // Derived from the type's `unique` parameters: same count, same run.
    let a = db.ok(&["enqueue", "demo-known-total", "-p", "count=5"]);
    let b = db.ok(&[
        "enqueue",
        "demo-known-total",
        "-p",
        "count=5",
        "-p",
        "delay_ms=1",
    ]);
    let c = db.ok(&["enqueue", "demo-known-total", "-p", "count=6"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let r = serve.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 5}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["duplicateOf"].to_string(), a);
    let bad = serve.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "uniqueKey": ""}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
}
