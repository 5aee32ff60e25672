//! `POST /api/jobs` from many clients at once: the requests share group
//! commits like in-process callers, each answer is its run exactly as
//! stored (the server does not read it back), and every run has its one
//! audit row.

mod common;

use std::thread;

use serde_json::{Value, json};

use common::TestDb;

const CLIENTS: usize = 8;
const EACH: usize = 15;

#[test]
fn concurrent_posts_share_commits_and_each_answer_is_its_stored_run() {
    let db = TestDb::new("apienqueue");
    let s = db.spawn_serve(&["--no-worker"]);
    let answers: Vec<Value> = thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let api = &s.api;
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let body = json!({
                                "jobName": "demo-known-total",
                                "parameters": {"count": c * 100 + i},
                                "priority": 3,
                            });
                            let r = api.post("/api/jobs", &body);
                            assert_eq!(r.status, 201, "{}", r.text());
                            r.json()["run"].clone()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    assert_eq!(answers.len(), CLIENTS * EACH);
    for run in &answers {
        let id = run["id"].as_i64().expect("run id");
        let stored = s.api.get(&format!("/api/jobs/{id}")).json()["run"].clone();
        let Value::Object(fields) = run else {
            panic!("run is an object: {run}")
        };
        for (k, v) in fields {
            assert_eq!(&stored[k], v, "run {id}: {k} as answered and as stored");
        }
        assert_eq!(run["status"], "QUEUED");
        assert_eq!(run["priority"], 3);
    }
    let runs: i64 = db.scalar("SELECT count(*) FROM JobRun").parse().unwrap();
    let commits: i64 = db
        .scalar("SELECT count(DISTINCT createdAt) FROM JobRun")
        .parse()
        .unwrap();
    assert_eq!(runs, (CLIENTS * EACH) as i64);
    // The runs of one commit share its time: fewer times than runs means
    // some commit carried several clients' POSTs.
    assert!(commits < runs, "{runs} runs in {commits} commits");
    let audited: i64 = db
        .scalar("SELECT count(DISTINCT target) FROM Audit WHERE action = 'run.enqueue'")
        .parse()
        .unwrap();
    assert_eq!(audited, runs, "one audit row per run");
}

/// The run of `GET /api/jobs/ID` printed as the enqueue answer prints it
/// (keys sorted), without what is usual for its type (which only `GET` adds).
fn stored_text(s: &common::Serve, id: i64, duplicate_of: Option<i64>) -> String {
    let mut run = s.api.get(&format!("/api/jobs/{id}")).json()["run"].clone();
    if let Value::Object(m) = &mut run {
        m.remove("usual");
        m.remove("unusual");
    }
    match duplicate_of {
        Some(d) => json!({"run": run, "duplicateOf": d}).to_string(),
        None => json!({"run": run}).to_string(),
    }
}

#[test]
fn each_answer_is_byte_for_byte_the_run_that_get_shows() {
    let db = TestDb::new("apianswer");
    let s = db.spawn_serve(&["--no-worker"]);
    let bodies = [
        json!({"jobName": "demo-known-total", "parameters": {"count": 2, "delay_ms": 0}}),
        json!({"jobName": "demo-known-total", "priority": -7, "runAt": "2099-01-01T00:00:00Z"}),
        json!({"jobName": "demo-known-total", "uniqueKey": "k \"1\"\n"}),
    ];
    for body in &bodies {
        let r = s.api.post("/api/jobs", body);
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["run"]["id"].as_i64().expect("run id");
        assert_eq!(r.text(), stored_text(&s, id, None), "answer to {body}");
    }
    // The same unique key again: 200 with the waiting run.
    let r = s.api.post("/api/jobs", &bodies[2]);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["run"]["id"].as_i64().expect("run id");
    assert_eq!(r.text(), stored_text(&s, id, Some(id)));
    // A run enqueued after another (WAITING), and a re-run of a cancelled one.
    let r = s.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "after": [1]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let waiting = r.json()["run"]["id"].as_i64().expect("run id");
    assert_eq!(r.text(), stored_text(&s, waiting, None));
    assert_eq!(s.api.post("/api/jobs/1/cancel", &json!({})).status, 200);
    let r = s.api.post("/api/jobs/1/rerun", &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    let rerun = r.json()["run"]["id"].as_i64().expect("run id");
    assert_eq!(r.text(), stored_text(&s, rerun, None));
}
