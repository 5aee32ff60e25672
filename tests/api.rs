//! The HTTP API through real HTTP against `jobmgr serve`: every route's
//! success, bad input and conflicts (the security checks are in
//! `api_security.rs`).

mod common;

use std::time::Duration;

use common::http::{Api, request};
use common::{TestDb, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn enqueue(api: &Api, name: &str, params: Value) -> i64 {
    let r = api.post("/api/jobs", &json!({"jobName": name, "parameters": params}));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["run"]["id"].as_i64().expect("run id")
}

#[test]
fn enqueue_validates_input_and_is_audited() {
    let db = TestDb::new("enqueue");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let r = a.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 5}, "priority": 3}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let run = &r.json()["run"];
    assert_eq!(run["status"], "QUEUED");
    assert_eq!(run["triggeredBy"], "api");
    assert_eq!(run["priority"], 3);
    assert_eq!(run["parameters"]["count"], 5);
    assert_eq!(run["progressText"], "Queued");
    let id = run["id"].as_i64().expect("id");

    let r = a.post("/api/jobs", &json!({"jobName": "demo-known-totl"}));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "unknown_job_type");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("demo-known-total")
    );
    let r = a.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": "many"}}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_parameter");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("count")
    );
    let r = a.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "priority": 5000}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_input");
    for body in ["{not json", "[]", "{\"parameters\":{}}"] {
        let r = request(
            &a.addr,
            "POST",
            "/api/jobs",
            &[("Authorization", &format!("Bearer {}", a.token))],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code(), "invalid_input", "{body}");
    }
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "1");
    let audit = db.query("SELECT action, target, source FROM Audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0][0], "run.enqueue");
    assert_eq!(audit[0][1], format!("run {id}"));
    assert!(
        audit[0][2]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{audit:?}"
    );
}

#[test]
fn history_filters_and_paginates() {
    let db = TestDb::new("history");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            enqueue(
                a,
                if i % 2 == 0 {
                    "demo-known-total"
                } else {
                    "demo-unknown-total"
                },
                json!({"count": 100 + i}),
            )
        })
        .collect();
    let p1 = a.ok("/api/jobs?limit=2");
    let got: Vec<i64> = p1["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(got, vec![ids[4], ids[3]], "newest first");
    assert_eq!(p1["runs"][0]["progressText"], "Queued");
    assert_eq!(p1["nextCursor"], ids[3]);
    let p2 = a.ok(&format!("/api/jobs?limit=2&cursor={}", ids[3]));
    assert_eq!(p2["runs"][0]["id"], ids[2]);
    let p3 = a.ok(&format!("/api/jobs?limit=2&cursor={}", ids[1]));
    assert_eq!(p3["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(p3["nextCursor"], Value::Null);
    let by_name = a.ok("/api/jobs?name=demo-unknown-total");
    assert_eq!(by_name["runs"].as_array().map(Vec::len), Some(2));
    let q = a.ok("/api/jobs?q=102");
    assert_eq!(q["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(q["runs"][0]["id"], ids[2]);
    assert_eq!(
        a.post(&format!("/api/jobs/{}/cancel", ids[0]), &json!({}))
            .status,
        200
    );
    let st = a.ok("/api/jobs?status=CANCELLED,failed");
    assert_eq!(st["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        a.ok("/api/jobs?since=2000-01-01&until=2999-01-01T00:00:00Z")["runs"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert_eq!(
        a.ok("/api/jobs?since=2999-01-01")["runs"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    for bad in [
        "status=DONE",
        "limit=0",
        "limit=501",
        "limit=x",
        "cursor=abc",
        "since=yesterday",
        "until=2026-13-01",
    ] {
        let r = a.get(&format!("/api/jobs?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_input", "{bad}");
    }
}

#[test]
fn details_cancel_and_rerun() {
    let db = TestDb::new("details");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let id = enqueue(a, "demo-known-total", json!({"count": 3}));
    let d = a.ok(&format!("/api/jobs/{id}"));
    assert_eq!(d["run"]["id"], id);
    assert_eq!(d["stages"], json!([]));
    assert_eq!(d["reruns"], json!([]));
    assert_eq!(d["rerunOf"], Value::Null);
    assert_eq!(d["worker"], Value::Null, "never claimed");
    assert_eq!(a.get("/api/jobs/999").status, 404);
    assert_eq!(a.get("/api/jobs/999").error_code(), "not_found");
    assert_eq!(a.get("/api/jobs/abc").status, 404);

    let r = a.post(&format!("/api/jobs/{id}/rerun"), &json!({}));
    assert_eq!(r.status, 409, "a queued run cannot be re-run");
    assert_eq!(r.error_code(), "conflict");
    let r = a.post(&format!("/api/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"result": "cancelled"}));
    let r = a.post(&format!("/api/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 409);
    assert_eq!(a.post("/api/jobs/999/cancel", &json!({})).status, 404);

    let r = a.post_as_page(&format!("/api/jobs/{id}/rerun"), &json!({}));
    assert_eq!(r.status, 201, "{}", r.text());
    let new = r.json()["run"].clone();
    assert_eq!(new["rerunOfId"], id);
    assert_eq!(new["parameters"]["count"], 3);
    let d = a.ok(&format!("/api/jobs/{id}"));
    assert_eq!(d["reruns"][0]["id"], new["id"]);
    assert_eq!(d["reruns"][0]["status"], "QUEUED");
    assert!(d["reruns"][0]["createdAt"].is_string());
    let d2 = a.ok(&format!("/api/jobs/{}", new["id"]));
    assert_eq!(d2["rerunOf"], json!({"id": id, "status": "CANCELLED"}));
    let actions: Vec<String> = db
        .query("SELECT action FROM Audit ORDER BY id")
        .into_iter()
        .map(|r| r[0].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(actions, ["run.enqueue", "run.cancel", "run.rerun"]);
}

#[test]
fn logs_pages_filters_and_export() {
    let db = TestDb::new("logs");
    let s = db.spawn_serve(&[]);
    let a = &s.api;
    let id = enqueue(a, "demo-known-total", json!({"count": 20, "delay_ms": 0}));
    wait_for("the run to complete", WAIT, || {
        a.ok(&format!("/api/jobs/{id}"))["run"]["status"] == "COMPLETED"
    });
    let all = a.ok(&format!("/api/jobs/{id}/logs?limit=1000"));
    let lines = all["lines"].as_array().expect("lines").clone();
    assert!(lines.len() >= 5, "{all}");
    assert_eq!(all["nextAfter"], Value::Null);
    let page = a.ok(&format!("/api/jobs/{id}/logs?limit=2"));
    assert_eq!(page["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["nextAfter"], lines[1]["id"]);
    let next = a.ok(&format!(
        "/api/jobs/{id}/logs?limit=2&after={}",
        lines[1]["id"]
    ));
    assert_eq!(next["lines"][0]["id"], lines[2]["id"]);
    let q = a.ok(&format!("/api/jobs/{id}/logs?q=PROCESSED%2010"));
    assert_eq!(q["lines"].as_array().map(Vec::len), Some(1));
    let warn = a.ok(&format!("/api/jobs/{id}/logs?level=warning"));
    assert_eq!(warn["lines"], json!([]));
    let d = a.ok(&format!("/api/jobs/{id}"));
    assert_eq!(d["stages"][0]["stage"], "Processing");
    assert!(d["stages"][0]["at"].is_string());
    // The worker that ran it: its row, joined by the run's workerId.
    let w = &d["worker"];
    assert_eq!(w["id"], d["run"]["workerId"]);
    assert!(w["pid"].as_i64().unwrap() > 0, "{w}");
    assert!(!w["version"].as_str().unwrap().is_empty(), "{w}");
    assert!(!w["hostname"].as_str().unwrap().is_empty(), "{w}");
    for bad in ["level=loud", "limit=1001", "limit=0", "after=x"] {
        let r = a.get(&format!("/api/jobs/{id}/logs?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.error_code(), "invalid_input");
    }
    assert_eq!(a.get("/api/jobs/999/logs").status, 404);

    let nd = a.get(&format!("/api/jobs/{id}/logs/export?format=ndjson"));
    assert_eq!(nd.status, 200);
    assert_eq!(
        nd.header("Content-Disposition"),
        Some(format!("attachment; filename=\"run-{id}.ndjson\"").as_str())
    );
    let parsed: Vec<Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect();
    assert_eq!(parsed.len(), lines.len());
    assert_eq!(parsed[0]["message"], lines[0]["message"]);
    let tx = a.get(&format!("/api/jobs/{id}/logs/export?format=text"));
    assert_eq!(tx.status, 200);
    assert_eq!(
        tx.header("Content-Disposition"),
        Some(format!("attachment; filename=\"run-{id}.txt\"").as_str())
    );
    assert_eq!(tx.text().lines().count(), lines.len());
    assert!(tx.text().contains("processed 10 items"));
    assert_eq!(
        a.get(&format!("/api/jobs/{id}/logs/export?format=xml"))
            .status,
        400
    );
    assert_eq!(a.get("/api/jobs/999/logs/export").status, 404);
}

#[test]
fn stats_errors_and_job_types() {
    let db = TestDb::new("stats");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    enqueue(a, "demo-known-total", json!({}));
    let now = db.scalar("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')");
    let old = "2020-01-01T00:00:00.000Z";
    for (name, error, at, id) in [
        ("demo-multi-phase", "boom", now.as_str(), 101),
        ("demo-multi-phase", "boom", now.as_str(), 102),
        ("demo-known-total", "other", now.as_str(), 103),
        ("demo-multi-phase", "ancient", old, 104),
    ] {
        db.conn()
            .execute(
                "INSERT INTO JobRun (id, jobName, status, createdAt, startedAt, finishedAt, error, updatedAt) \
                 VALUES (?1, ?2, 'FAILED', ?3, ?3, ?3, ?4, ?3)",
                rusqlite::params![id, name, at, error],
            )
            .expect("insert failed run");
    }
    let st = a.ok("/api/stats");
    assert_eq!(st["counts"]["byStatus"]["QUEUED"], 1);
    assert_eq!(st["counts"]["byStatus"]["FAILED"], 4);
    assert_eq!(st["counts"]["total"], 5);
    assert_eq!(st["throughput"]["lastMinute"], 3);
    assert_eq!(st["throughput"]["lastHour"], 3);
    assert_eq!(st["failedLast24h"], 3);
    let e = a.ok("/api/errors?hours=24");
    let groups = e["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{e}");
    let boom = groups
        .iter()
        .find(|g| g["error"] == "boom")
        .expect("boom group");
    assert_eq!(boom["jobName"], "demo-multi-phase");
    assert_eq!(boom["count"], 2);
    assert_eq!(boom["lastRunId"], 102);
    assert_eq!(boom["lastAt"], now.as_str());
    assert_eq!(
        a.ok("/api/errors")["groups"].as_array().map(Vec::len),
        Some(2)
    );
    for bad in ["hours=x", "hours=0", "hours=-1"] {
        assert_eq!(a.get(&format!("/api/errors?{bad}")).status, 400, "{bad}");
    }
    let types = a.ok("/api/job-types");
    let t = types["jobTypes"]
        .as_array()
        .expect("jobTypes")
        .iter()
        .find(|t| t["name"] == "demo-known-total")
        .expect("demo type")
        .clone();
    assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(
        t["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "count" && p["type"] == "integer")
    );
}

#[test]
fn stalled_runs_preview_and_cleanup() {
    let db = TestDb::new("stalled");
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "3600000");
    let a = &s.api;
    let id = db.insert_stalled_run();
    let p = a.ok("/api/jobs/stalled");
    assert_eq!(p["runs"][0]["id"], id);
    assert_eq!(p["runs"][0]["progressText"], "Waiting (0 processed)");
    let r = a.post("/api/jobs/cleanup-stalled", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["deadWorkers"][0]["hostname"], "gone");
    assert_eq!(v["runs"][0]["id"], id);
    assert_eq!(v["runs"][0]["jobName"], "demo-multi-phase");
    assert_eq!(v["runs"][0]["status"], "FAILED");
    assert!(
        v["runs"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("worker"))
    );
    assert_eq!(a.ok("/api/jobs/stalled")["runs"], json!([]));
    assert_eq!(
        db.scalar("SELECT action FROM Audit"),
        "runs.cleanup-stalled"
    );
}

#[test]
fn worker_start_and_stop_through_the_api() {
    let db = TestDb::new("workerapi");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let w = a.ok("/api/worker");
    assert_eq!(w["state"], "NONE");
    assert_eq!(w["supervised"], false);
    assert_eq!(w["worker"], Value::Null);
    assert!(w["serverVersion"].is_string());
    let r = a.post("/api/worker/stop", &json!({}));
    assert_eq!(r.status, 409);
    let r = a.post_as_page("/api/worker/start", &json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.json()["worker"]["state"].is_string());
    wait_for("the supervised worker to run", WAIT, || {
        let w = a.ok("/api/worker");
        w["state"] == "RUNNING" && w["supervised"] == true
    });
    let pid = a.ok("/api/worker")["worker"]["pid"].as_i64().expect("pid");
    let r = a.post("/api/worker/start", &json!({}));
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "conflict");
    let r = a.post("/api/worker/stop", &json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.json()["worker"]["worker"]["stopRequestedAt"].is_string());
    wait_for("the worker to stop", WAIT, || {
        a.ok("/api/worker")["state"] == "STOPPED"
    });
    wait_for("the worker process to exit", WAIT, || {
        !common::pid_alive(pid)
    });
    let actions: Vec<Value> = db
        .query("SELECT action FROM Audit ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(actions, [json!("worker.start"), json!("worker.stop")]);
    // A requested stop is not undone by the supervisor: a new start is needed.
    let r = a.post("/api/worker/start", &json!({}));
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for("a new worker", WAIT, || {
        let w = a.ok("/api/worker");
        w["state"] == "RUNNING" && w["worker"]["pid"] != pid
    });
    assert_eq!(
        db.scalar("SELECT count(*) FROM Worker"),
        "2",
        "no restart between the stop and the start"
    );
}

#[test]
fn cancelling_a_running_run_asks_the_worker() {
    let db = TestDb::new("cancelrunning");
    let s = db.spawn_serve(&[]);
    let a = &s.api;
    let id = enqueue(
        a,
        "demo-known-total",
        json!({"count": 100000, "delay_ms": 20}),
    );
    wait_for("the run to start", WAIT, || {
        a.ok(&format!("/api/jobs/{id}"))["run"]["status"] == "RUNNING"
    });
    let r = a.post_as_page(&format!("/api/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"result": "requested"}));
    wait_for("the worker to cancel it", WAIT, || {
        a.ok(&format!("/api/jobs/{id}"))["run"]["status"] == "CANCELLED"
    });
    let r = a.post(&format!("/api/jobs/{id}/cancel"), &json!({}));
    assert_eq!(r.status, 409, "a finished run cannot be cancelled");
    let audit = db.query("SELECT action, target, detail FROM Audit WHERE action = 'run.cancel'");
    assert_eq!(
        audit,
        vec![vec![
            json!("run.cancel"),
            json!(format!("run {id}")),
            json!("requested")
        ]]
    );
}

/// Failures whose messages differ only in numbers are one group, with the
/// pattern they share and the text that finds them in the history.
#[test]
fn failures_group_by_their_message_with_numbers_masked() {
    let db = TestDb::new("error-groups");
    let s = db.spawn_serve(&[]);
    let ids: Vec<i64> = ["1", "2", "3"]
        .iter()
        .map(|n| {
            db.enqueue(
                "demo-multi-phase",
                &["count=5", "delay_ms=0", &format!("fail_at={n}")],
            )
        })
        .collect();
    for id in &ids {
        db.wait_status(*id, "FAILED", Duration::from_secs(30));
    }
    let groups = s.api.ok("/api/errors?hours=24")["groups"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    let g = &groups[0];
    assert_eq!(g["count"], 3);
    assert_eq!(g["pattern"], "record N could not be processed (fail_at=N)");
    assert_eq!(g["error"], "record 3 could not be processed (fail_at=3)");
    assert_eq!(g["lastRunId"], ids[2]);
    assert_eq!(g["search"], "record");
    // The search finds exactly the group's runs.
    let found = s
        .api
        .ok("/api/jobs?status=FAILED&name=demo-multi-phase&q=record")["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(found, 3);
}
