//! The application owner: `serve` stops and joins every thread it started
//! (WebSocket and log-follow threads included), and its maintenance tasks
//! run under one ticker and report their counts in `GET /api/worker`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::http::next_json;
use common::{TestDb, wait_for};
use serde_json::Value;

/// The names of the threads of process `pid` (`self` for this one).
fn thread_names(pid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// The live sockets' writer threads serve starts: one per core, at most 4.
fn live_writers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

fn count(names: &[String], prefix: &str) -> usize {
    names.iter().filter(|n| n.starts_with(prefix)).count()
}

/// Reads until the server closes the socket; false if it never does.
fn sees_close(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> bool {
    for _ in 0..100 {
        if next_json(ws).is_none() {
            return true;
        }
    }
    false
}

#[test]
fn serve_with_live_and_follow_sockets_exits_0_on_sigterm_and_closes_them() {
    let db = TestDb::new("app-sigterm");
    let id = db.enqueue("demo-multi-phase", &[]);
    let mut serve = db.spawn_serve(&["--no-worker"]);
    let pid = serve.child.id().to_string();
    let mut live = serve.api.ws("/ws");
    let snap = next_json(&mut live).expect("snapshot");
    assert_eq!(snap["type"], "snapshot");
    // No worker: the run stays QUEUED, so the follow socket stays open.
    let mut follow = serve.api.ws(&format!("/ws?follow={id}"));
    wait_for("the two socket threads", Duration::from_secs(20), || {
        let names = thread_names(&pid);
        count(&names, "ws-live") == live_writers() && count(&names, "ws-follow") == 1
    });
    serve.signal("TERM");
    assert!(sees_close(&mut live), "the live socket was closed");
    assert!(sees_close(&mut follow), "the follow socket was closed");
    assert_eq!(serve.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        serve.log_text().contains("server stopped"),
        "{}",
        serve.log_text()
    );
}

#[test]
fn close_joins_every_thread_serve_started() {
    let db = TestDb::new("app-close");
    let id = db.enqueue("demo-multi-phase", &[]);
    let settings = jobmgr::Settings {
        db: db.path.clone(),
        config: None,
        heartbeat_ms: 200,
        stale_after_ms: 1500,
        drain_timeout_secs: 5.0,
    };
    let opts = jobmgr::ServeOptions {
        bind: "127.0.0.1:0".into(),
        start_worker: false,
        client_timeout: Duration::from_secs(30),
        maintenance_every: Duration::from_millis(100),
        metrics_bind: None,
    };
    let registry = Arc::new(jobmgr::jobs::builtin_registry());
    let app = jobmgr::Serve::open(&settings, registry, &opts).expect("open serve");
    let token = app
        .admin_url()
        .rsplit_once("token=")
        .map(|(_, t)| t.to_string())
        .expect("token in the URL");
    let api = common::http::Api {
        addr: app.addr().to_string(),
        token,
    };
    let mut live = api.ws("/ws");
    next_json(&mut live).expect("snapshot");
    let mut follow = api.ws(&format!("/ws?follow={id}"));
    // Test threads are named after their tests: match serve's exactly.
    let ours = |n: &str| {
        n.starts_with("ws-")
            || n.starts_with("http-")
            || ["watcher", "maintenance", "supervisor", "checkpointer"].contains(&n)
    };
    wait_for("the socket threads", Duration::from_secs(20), || {
        let names = thread_names("self");
        count(&names, "ws-live") == live_writers() && count(&names, "ws-follow") == 1
    });
    app.close();
    // Right after close returns, not eventually: close joined them.
    let names = thread_names("self");
    let left: Vec<&String> = names.iter().filter(|n| ours(n)).collect();
    assert!(left.is_empty(), "threads left after close: {left:?}");
    assert!(sees_close(&mut live));
    assert!(sees_close(&mut follow));
}

fn task<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["maintenance"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no maintenance task {name} in {status}"))
}

fn resolved(t: &Value) -> u64 {
    ["runsFailed", "runsRequeued", "runsCancelled"]
        .iter()
        .map(|k| t["totals"][k].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn maintenance_tasks_report_their_counts() {
    let db = TestDb::new("app-tasks");
    db.ok(&["migrate"]);
    let stalled = db.insert_stalled_run();
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let serve = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "100");

    // The stale worker is declared dead and its run resolved, both counted
    // by the stale-workers task.
    let mut status = Value::Null;
    wait_for("stale-workers to report", Duration::from_secs(20), || {
        status = serve.api.ok("/api/worker");
        task(&status, "stale-workers")["totals"]["workersDeclaredDead"] == 1
    });
    let names: Vec<&str> = status["maintenance"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["stale-workers", "stalled-runs"]);
    let sw = task(&status, "stale-workers");
    assert_eq!(resolved(sw), 1, "{sw}");
    assert!(sw["runs"].as_u64().unwrap_or(0) >= 1);
    assert!(sw["lastRunAt"].is_string());
    assert!(sw["lastError"].is_null());
    assert_ne!(db.status_of(stalled), "RUNNING");

    // A RUNNING run of a worker that already stopped is the stalled-runs
    // task's: nobody has to be declared dead for it.
    let c = db.conn();
    c.execute(
        "INSERT INTO Worker (hostname, pid, version, state, startedAt, heartbeatAt, stoppedAt) \
         VALUES ('gone', 999998, 'x', 'STOPPED', '2020-01-01T00:00:00.000Z', \
         '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
        [],
    )
    .expect("insert stopped worker");
    let w = c.last_insert_rowid();
    c.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, startedAt, workerId, updatedAt) \
         VALUES ('demo-multi-phase', 'RUNNING', '2020-01-01T00:00:00.000Z', \
         '2020-01-01T00:00:00.000Z', ?1, '2020-01-01T00:00:00.000Z')",
        [w],
    )
    .expect("insert run");
    let left = c.last_insert_rowid();
    wait_for("stalled-runs to report", Duration::from_secs(20), || {
        status = serve.api.ok("/api/worker");
        resolved(task(&status, "stalled-runs")) == 1
    });
    assert_ne!(db.status_of(left), "RUNNING");
    let sw = task(&status, "stale-workers");
    assert_eq!(sw["totals"]["workersDeclaredDead"], 1, "{sw}");
    assert_eq!(resolved(sw), 1, "{sw}");
}
