//! The HTTP API through real HTTP against `jobmgr serve`: every route's
//! success and bad input, and the security checks (auth, Origin, Host,
//! method, body size).

mod common;

use std::os::unix::fs::PermissionsExt;
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
fn healthz_needs_no_auth() {
    let db = TestDb::new("healthz");
    let s = db.spawn_serve(&["--no-worker"]);
    let r = request(&s.api.addr, "GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert!(v["version"].as_str().is_some_and(|v| !v.is_empty()));
}

#[test]
fn start_url_and_token_file_are_private_and_reused() {
    let db = TestDb::new("token");
    let first = {
        let s = db.spawn_serve(&["--no-worker"]);
        assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
        assert!(
            !s.url.contains(":0/"),
            "the actual port is printed: {}",
            s.url
        );
        assert_eq!(s.api.token.len(), 64);
        assert!(s.api.token.bytes().all(|b| b.is_ascii_hexdigit()));
        s.api.token.clone()
    };
    let path = db.dir.join("jobmgr.db.token");
    let mode = std::fs::metadata(&path)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let s = db.spawn_serve(&["--no-worker"]);
    assert_eq!(s.api.token, first, "the token is reused");
    drop(s);
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let mut s = db.spawn_server_with_env(cmd, "JOBMGR_TOKEN", "secret-from-env");
    assert_eq!(s.api.token, "secret-from-env");
    assert_eq!(s.api.ok("/api/worker")["state"], "NONE");
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0));
}

#[test]
fn plain_jobmgr_serves() {
    let db = TestDb::new("plain");
    let mut cmd = db.cmd();
    cmd.env("JOBMGR_BIND", "127.0.0.1:0");
    let s = db.spawn_server(cmd, db.dir.join("plain.log"));
    assert_eq!(s.api.ok("/api/stats")["counts"]["total"], 0);
}

#[test]
fn token_url_signs_in_with_a_cookie() {
    let db = TestDb::new("signin");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let path = format!("/admin/jobs?token={}", a.token);
    let r = request(&a.addr, "GET", &path, &[], None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("Location"), Some("/admin/jobs"));
    assert_eq!(
        r.header("Set-Cookie"),
        Some(
            format!(
                "jobmgr_session={}; HttpOnly; SameSite=Strict; Path=/",
                a.token
            )
            .as_str()
        )
    );
    let cookie = format!("jobmgr_session={}", a.token);
    let page = request(&a.addr, "GET", "/admin/jobs", &[("Cookie", &cookie)], None);
    let has_page = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/admin/index.html"
    ))
    .exists();
    assert_eq!(
        page.status,
        if has_page { 200 } else { 404 },
        "{}",
        page.text()
    );
    assert!(
        page.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    for r in [&page, &request(&a.addr, "GET", "/admin/jobs", &[], None)] {
        assert!(r.header("Content-Security-Policy").is_some_and(
            |c| c.contains("default-src 'self'")
                && c.contains("frame-ancestors 'none'")
                && c.contains("script-src 'self'")
        ));
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
    }
    let worker = request(&a.addr, "GET", "/api/worker", &[("Cookie", &cookie)], None);
    assert_eq!(worker.status, 200, "the cookie authenticates API calls");
    let wrong = request(&a.addr, "GET", "/admin/jobs?token=nope", &[], None);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("Set-Cookie").is_none());
    assert!(wrong.text().contains("URL"), "{}", wrong.text());
    let missing = request(&a.addr, "GET", "/admin/jobs", &[], None);
    assert_eq!(missing.status, 401);
    let asset = request(
        &a.addr,
        "GET",
        "/admin/assets/nope.js",
        &[("Cookie", &cookie)],
        None,
    );
    assert_eq!(asset.status, 404);
    let asset = request(&a.addr, "GET", "/admin/assets/styles.css", &[], None);
    assert_eq!(asset.status, 401, "assets need the session too");
}

#[test]
fn every_api_route_needs_auth() {
    let db = TestDb::new("auth");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let routes = [
        ("GET", "/api/worker"),
        ("POST", "/api/worker/start"),
        ("POST", "/api/worker/stop"),
        ("GET", "/api/stats"),
        ("GET", "/api/errors"),
        ("GET", "/api/job-types"),
        ("GET", "/api/jobs"),
        ("POST", "/api/jobs"),
        ("GET", "/api/jobs/1"),
        ("POST", "/api/jobs/1/cancel"),
        ("POST", "/api/jobs/1/rerun"),
        ("GET", "/api/jobs/stalled"),
        ("POST", "/api/jobs/cleanup-stalled"),
        ("GET", "/api/jobs/1/logs"),
        ("GET", "/api/jobs/1/logs/export"),
        ("GET", "/ws"),
    ];
    let wrong_cookie = "jobmgr_session=0000".to_string();
    for (method, path) in routes {
        let body = (method == "POST").then_some(&b"{}"[..]);
        for headers in [
            vec![],
            vec![("Authorization", "Bearer wrong")],
            vec![("Authorization", a.token.as_str())],
            vec![("Cookie", wrong_cookie.as_str())],
        ] {
            let r = request(&a.addr, method, path, &headers, body);
            assert_eq!(
                r.status,
                401,
                "{method} {path} with {headers:?}: {}",
                r.text()
            );
            assert_eq!(r.error_code(), "unauthorized");
        }
    }
    assert_eq!(db.scalar("SELECT count(*) FROM Audit"), "0");
}

#[test]
fn foreign_origin_wrong_host_wrong_method_and_big_bodies_are_refused() {
    let db = TestDb::new("guards");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let bearer = format!("Bearer {}", a.token);
    let cookie = format!("jobmgr_session={}", a.token);
    let body = json!({"jobName": "demo-known-total"}).to_string();
    for origin in [
        "http://evil.example",
        "null",
        &format!("https://{}", a.addr),
    ] {
        let r = request(
            &a.addr,
            "POST",
            "/api/jobs",
            &[("Cookie", &cookie), ("Origin", origin)],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 403, "Origin {origin}: {}", r.text());
        assert_eq!(r.error_code(), "forbidden_origin");
    }
    let own = format!("http://{}", a.addr);
    let r = request(
        &a.addr,
        "POST",
        "/api/jobs",
        &[("Cookie", &cookie), ("Origin", &own)],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["run"]["triggeredBy"], "ui");

    let port = a.addr.rsplit(':').next().expect("port");
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1:1",
    ] {
        let r = request(
            &a.addr,
            "GET",
            "/api/worker",
            &[("Host", host), ("Authorization", &bearer)],
            None,
        );
        assert_eq!(r.status, 403, "Host {host}");
        assert_eq!(r.error_code(), "forbidden_host");
    }
    let r = request(
        &a.addr,
        "GET",
        "/healthz",
        &[("Host", "evil.example")],
        None,
    );
    assert_eq!(
        r.status, 403,
        "even the health check refuses a foreign Host"
    );
    let local = format!("localhost:{port}");
    let r = request(
        &a.addr,
        "GET",
        "/api/worker",
        &[("Host", &local), ("Authorization", &bearer)],
        None,
    );
    assert_eq!(r.status, 200);

    for (method, path) in [
        ("GET", "/api/worker/start"),
        ("DELETE", "/api/jobs/1"),
        ("PUT", "/api/jobs"),
        ("GET", "/api/jobs/1/cancel"),
        ("POST", "/api/stats"),
        ("POST", "/api/jobs/1/logs"),
    ] {
        let r = request(
            &a.addr,
            method,
            path,
            &[("Authorization", &bearer)],
            Some(b"{}"),
        );
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.error_code(), "method_not_allowed");
    }
    let r = a.get("/api/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");

    let big = json!({"jobName": "demo-known-total", "parameters": {"x": "a".repeat(70 * 1024)}})
        .to_string();
    let r = request(
        &a.addr,
        "POST",
        "/api/jobs",
        &[("Authorization", &bearer)],
        Some(big.as_bytes()),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "body_too_large");
    let huge_header = "x".repeat(20 * 1024);
    let r = request(
        &a.addr,
        "GET",
        "/api/worker",
        &[("Authorization", &bearer), ("X-Big", &huge_header)],
        None,
    );
    assert!(
        r.status == 431 || r.status == 400,
        "oversized headers: {}",
        r.status
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        "1",
        "only the same-origin POST enqueued"
    );
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
    assert_eq!(run["progressText"], "Waiting (0 processed)");
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
    assert_eq!(p1["runs"][0]["progressText"], "Waiting (0 processed)");
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

/// Inserts a RUNNING run held by a worker whose heartbeat is long gone.
fn insert_stalled(db: &TestDb) -> i64 {
    let c = db.conn();
    c.execute(
        "INSERT INTO Worker (hostname, pid, version, state, startedAt, heartbeatAt) \
         VALUES ('gone', 999999, 'x', 'RUNNING', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
        [],
    )
    .expect("insert worker");
    let w = c.last_insert_rowid();
    c.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, startedAt, workerId, updatedAt) \
         VALUES ('demo-multi-phase', 'RUNNING', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', ?1, \
         '2020-01-01T00:00:00.000Z')",
        [w],
    )
    .expect("insert run");
    c.last_insert_rowid()
}

#[test]
fn stalled_runs_preview_and_cleanup() {
    let db = TestDb::new("stalled");
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "3600000");
    let a = &s.api;
    let id = insert_stalled(&db);
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
fn the_maintenance_tick_resolves_stale_workers_runs() {
    let db = TestDb::new("tick");
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let _s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "100");
    let id = insert_stalled(&db);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(db.scalar("SELECT state FROM Worker"), "DEAD");
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
