//! The web server's security through real HTTP: the start-up URL and the
//! token file, signing in with the token, auth on every route, and the
//! Origin, Host, method and size checks.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::TestDb;
use common::http::request;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

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
    let root = request(&a.addr, "GET", "/", &[("Cookie", &cookie)], None);
    assert_eq!(root.status, 303);
    assert_eq!(root.header("Location"), Some("/admin/jobs"));
    assert_eq!(request(&a.addr, "GET", "/", &[], None).status, 401);
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
    assert_eq!(r.status, 431, "oversized headers");
    assert_eq!(r.error_code(), "headers_too_large");
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        "1",
        "only the same-origin POST enqueued"
    );
}
