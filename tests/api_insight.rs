//! The page's insight over HTTP: `GET /api/audit` (who did what from
//! where, filtered and paged, 400 on bad filters), `GET /api/jobs/count`
//! (the history filter's total, from the counters or counted up to a cap)
//! and what is usual for a run's type in the run JSON (the ETA's median
//! duration, and the unusual-outcome flags of a finished run).

mod common;

use std::time::Duration;

use common::TestDb;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Inserts `n` runs of `name` in `status`, each taking `ms` and reporting
/// `outcome` (JSON text).
fn seed(db: &TestDb, name: &str, status: &str, n: usize, ms: i64, outcome: &str) {
    db.conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
             outcomeSummary, updatedAt) \
             SELECT ?2, ?3, '{}', '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z', \
             strftime('%Y-%m-%dT%H:%M:%fZ', '2026-12-01T10:00:00.000', '+' || (?4 / 1000.0) || ' seconds'), \
             ?5, '2026-12-01T10:00:00.000Z' FROM k",
            rusqlite::params![n as i64, name, status, ms, outcome],
        )
        .expect("seed runs");
}

fn bad_request(api: &common::http::Api, path: &str, says: &str) {
    let r = api.get(path);
    assert_eq!(r.status, 400, "GET {path}: {}", r.text());
    assert_eq!(r.error_code(), "invalid_input", "{path}");
    assert!(r.text().contains(says), "GET {path}: {}", r.text());
}

#[test]
fn the_audit_lists_who_did_what_from_where_filtered_and_paged() {
    let db = TestDb::new("audit-api");
    db.ok(&["migrate"]);
    let s = db.spawn_serve(&["--no-worker"]);
    let cli = db
        .cmd()
        .env("USER", "alice")
        .args(["enqueue", "demo-known-total"])
        .output()
        .expect("run jobmgr");
    assert!(cli.status.success(), "{cli:?}");
    let by_api = s.api.post(
        "/api/jobs",
        &serde_json::json!({"jobName": "demo-known-total"}),
    );
    assert_eq!(by_api.status, 201, "{}", by_api.text());
    let api_id = by_api.json()["run"]["id"].as_i64().expect("run id");
    let by_page = s.api.post_as_page(
        "/api/jobs",
        &serde_json::json!({"jobName": "demo-unknown-total"}),
    );
    assert_eq!(by_page.status, 201, "{}", by_page.text());
    let page_id = by_page.json()["run"]["id"].as_i64().expect("run id");
    let cancel = s
        .api
        .post_as_page(&format!("/api/jobs/{page_id}/cancel"), &Value::Null);
    assert_eq!(cancel.status, 200, "{}", cancel.text());

    let all = s.api.ok("/api/audit");
    let entries = all["entries"].as_array().expect("entries");
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["from"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let pair = |a: &str, f: &str| (a.to_string(), f.to_string());
    assert_eq!(
        seen,
        [
            pair("run.cancel", "page"),
            pair("run.enqueue", "page"),
            pair("run.enqueue", "api"),
            pair("run.enqueue", "cli"),
        ],
        "newest first: {all}"
    );
    assert_eq!(entries[0]["runId"], page_id);
    assert_eq!(entries[0]["target"], format!("run {page_id}"));
    assert!(
        entries[0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{all}"
    );
    assert_eq!(entries[3]["user"], "alice");
    assert_eq!(entries[3]["address"], Value::Null);
    assert_eq!(all["nextCursor"], Value::Null);

    let ids = |path: &str| -> Vec<i64> {
        s.api.ok(path)["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(ids("/api/audit?source=page").len(), 2);
    assert_eq!(ids("/api/audit?source=api").len(), 1);
    assert_eq!(ids("/api/audit?source=cli&user=alice").len(), 1);
    assert_eq!(ids("/api/audit?user=bob").len(), 0);
    assert_eq!(ids(&format!("/api/audit?run={page_id}")).len(), 2);
    assert_eq!(ids(&format!("/api/audit?run={api_id}")).len(), 1);
    assert_eq!(ids("/api/audit?action=run.cancel").len(), 1);
    assert_eq!(ids("/api/audit?action=run.*").len(), 4);
    assert_eq!(ids("/api/audit?action=run").len(), 0, "exact unless a *");
    assert_eq!(ids("/api/audit?since=2999-01-01").len(), 0);
    assert_eq!(ids("/api/audit?until=2999-01-01").len(), 4);

    // Paging: two at a time, newest first, no row twice.
    let first = s.api.ok("/api/audit?limit=2");
    let cursor = first["nextCursor"].as_i64().expect("a next page");
    let second = ids(&format!("/api/audit?limit=2&cursor={cursor}"));
    let mut both = ids("/api/audit?limit=2");
    both.extend(&second);
    assert_eq!(both, ids("/api/audit"));

    bad_request(
        &s.api,
        "/api/audit?source=web",
        "source must be page, api or cli",
    );
    bad_request(&s.api, "/api/audit?run=abc", "run must be a run or row id");
    bad_request(&s.api, "/api/audit?run=0", "run must be a run or row id");
    bad_request(
        &s.api,
        "/api/audit?limit=201",
        "limit must be between 1 and 200",
    );
    bad_request(&s.api, "/api/audit?since=yesterday", "since must be a date");
    bad_request(
        &s.api,
        "/api/audit?action=DROP%20TABLE",
        "action must be an action name",
    );
    bad_request(&s.api, "/api/audit?who=me", "unknown filter 'who'");
}

#[test]
fn the_history_count_is_exact_from_the_counters_or_counted_up_to_a_cap() {
    let db = TestDb::new("count-api");
    db.ok(&["migrate"]);
    seed(&db, "demo-known-total", "COMPLETED", 7, 1000, "{}");
    seed(&db, "demo-known-total", "FAILED", 3, 1000, "{}");
    seed(&db, "demo-unknown-total", "FAILED", 2, 1000, "{}");
    let s = db.spawn_serve(&["--no-worker"]);
    let count = |q: &str| s.api.ok(&format!("/api/jobs/count{q}"));
    let all = count("");
    assert_eq!(
        (all["count"].as_u64(), &all["exact"], &all["counted"]),
        (Some(12), &Value::from(true), &Value::from("counters"))
    );
    let failed = count("?status=FAILED");
    assert_eq!(
        (failed["count"].as_u64(), &failed["counted"]),
        (Some(5), &Value::from("counters"))
    );
    assert_eq!(count("?status=FAILED,COMPLETED")["count"], 12);
    let typed = count("?status=FAILED&name=demo-known-total");
    assert_eq!(
        (typed["count"].as_u64(), &typed["counted"], &typed["exact"]),
        (Some(3), &Value::from("rows"), &Value::from(true))
    );
    assert_eq!(count("?q=unknown")["count"], 2);
    assert_eq!(count("?since=2999-01-01")["count"], 0);

    // Past the cap the count stops and says it is not exact.
    seed(&db, "demo-multi-phase", "COMPLETED", 10_050, 10, "{}");
    let big = count("?name=demo-multi-phase");
    assert_eq!(
        (big["count"].as_u64(), &big["exact"]),
        (Some(10_000), &Value::from(false)),
        "{big}"
    );
    let counters = count("?status=COMPLETED");
    assert_eq!(
        (counters["count"].as_u64(), &counters["exact"]),
        (Some(10_057), &Value::from(true))
    );

    let r = s.api.get("/api/jobs/count?status=DONE");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown status 'DONE'"), "{}", r.text());
    let r = s.api.get("/api/jobs/count?since=soon");
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_run_carries_its_types_usual_and_an_unusual_outcome_is_flagged() {
    let db = TestDb::new("usual-api");
    db.ok(&["migrate"]);
    // The usual: 20 COMPLETED runs of about 1 s, with counters of a
    // 10,000-record run.
    seed(
        &db,
        "demo-multi-phase",
        "COMPLETED",
        20,
        1000,
        r#"{"inserts": 3000, "updates": 6000, "errors": 1000}"#,
    );
    // One that took 12 s.
    seed(
        &db,
        "demo-multi-phase",
        "COMPLETED",
        1,
        12_000,
        r#"{"inserts": 3000, "updates": 6000, "errors": 1000}"#,
    );
    let slow = db.scalar("SELECT max(id) FROM JobRun");
    let s = db.spawn_serve(&[]);
    // A real run of 10 records: its counters are a thousandth of the usual.
    let small = db.enqueue("demo-multi-phase", &["count=10", "delay_ms=0"]);
    db.wait_status(small, "COMPLETED", WAIT);
    let run = &s.api.ok(&format!("/api/jobs/{small}"))["run"];
    assert_eq!(run["usual"]["runs"], 20, "{run}");
    assert_eq!(run["usual"]["durationMs"], 1000, "{run}");
    assert_eq!(run["usual"]["outcome"]["inserts"], 3000.0, "{run}");
    let texts: Vec<&str> = run["unusual"]
        .as_array()
        .expect("unusual")
        .iter()
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "1 error; usually about 1,000",
            "3 inserts; usually about 3,000",
            "6 updates; usually about 6,000"
        ],
        "{run}"
    );
    let slow_run = &s.api.ok(&format!("/api/jobs/{slow}"))["run"];
    let flags = slow_run["unusual"].as_array().expect("unusual");
    assert_eq!(flags.len(), 1, "{slow_run}");
    assert_eq!(flags[0]["key"], "duration");
    assert_eq!(flags[0]["text"], "took 12 s; usually about 1 s");
    // A usual run has no flag, and the history carries the same.
    let list = s.api.ok("/api/jobs?name=demo-multi-phase&limit=200");
    let runs = list["runs"].as_array().expect("runs");
    let flagged: Vec<i64> = runs
        .iter()
        .filter(|r| r["unusual"].as_array().is_some_and(|f| !f.is_empty()))
        .filter_map(|r| r["id"].as_i64())
        .collect();
    let slow: i64 = slow.parse().expect("id");
    assert_eq!(flagged, [small, slow]);
    // A type with fewer than five COMPLETED runs has no usual yet.
    let other = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(other, "COMPLETED", WAIT);
    let run = &s.api.ok(&format!("/api/jobs/{other}"))["run"];
    assert_eq!(run.get("usual"), None, "{run}");
    assert_eq!(run.get("unusual"), None, "{run}");
    // One item, said so.
    let log = db.ok(&["logs", &other.to_string()]);
    assert!(log.contains("done: 1 item processed"), "{log}");
}
