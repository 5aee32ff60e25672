//! Errors by class and the audit trail, through HTTP, the CLI and the
//! SQLite file: each class's HTTP status, `class` code and CLI exit code;
//! an audit row the database refuses taking its action back with it; CLI
//! actions audited with the OS user; and a worker start that answers at
//! once while the new worker's row follows live.

mod common;

use std::time::{Duration, Instant};

use common::http::{Resp, wait_message};
use common::{TestDb, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The `(status, code, class)` of an error answer.
fn error_of(r: &Resp) -> (u16, String, String) {
    let e = &r.json()["error"];
    let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
    (r.status, text("code"), text("class"))
}

/// The exit code and stderr of `jobmgr args...` on `db`, with `USER` set.
fn cli(db: &TestDb, args: &[&str]) -> (Option<i32>, String) {
    let out = db
        .cmd()
        .args(args)
        .env("USER", "audit-tester")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run jobmgr");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code(), err)
}

/// Replaces `Audit` by a table that refuses every new row: the database
/// refusing the audit write, for every connection (the enqueue committer
/// runs with triggers off, so a RAISE trigger would not reach it).
fn refuse_audit_rows(db: &TestDb) {
    db.conn()
        .execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE Audit RENAME TO AuditKept;
             CREATE TABLE Audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL,
                 target TEXT, source TEXT NOT NULL, user TEXT, detail TEXT,
                 CHECK (action = 'refused'));
             COMMIT;",
        )
        .expect("replace the Audit table");
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).parse().expect("a count")
}

#[test]
fn each_class_answers_its_status_class_code_and_exit_code() {
    let db = TestDb::new("classes");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let done = db.enqueue("demo-known-total", &["count=1"]);
    db.ok(&["cancel", &done.to_string()]);

    // Invalid input.
    let r = a.post("/api/jobs", &json!({"jobName": "demo-known-totl"}));
    assert_eq!(
        error_of(&r),
        (400, "unknown_job_type".into(), "invalid_input".into())
    );
    assert_eq!(cli(&db, &["enqueue", "demo-known-totl"]).0, Some(2));
    // Not found.
    let r = a.post("/api/jobs/999/cancel", &json!({}));
    assert_eq!(error_of(&r), (404, "not_found".into(), "not_found".into()));
    assert_eq!(cli(&db, &["show", "999"]).0, Some(3));
    // Conflict: a finished run cannot be cancelled.
    let r = a.post(&format!("/api/jobs/{done}/cancel"), &json!({}));
    assert_eq!(error_of(&r), (409, "conflict".into(), "conflict".into()));
    assert_eq!(cli(&db, &["cancel", &done.to_string()]).0, Some(4));

    // Internal: the run ids are used up. That is no conflict of the
    // caller's making: 500, exit 1.
    db.conn()
        .execute(
            "INSERT INTO JobRun (id, jobName, status, createdAt, updatedAt) VALUES \
             (9223372036854775000, 'demo-known-total', 'QUEUED', '2020-01-01T00:00:00.000Z', \
             '2020-01-01T00:00:00.000Z')",
            [],
        )
        .expect("insert a run near the last id");
    let runs = count(&db, "SELECT count(*) FROM JobRun");
    let r = a.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 1}}),
    );
    assert_eq!(
        error_of(&r),
        (500, "internal_error".into(), "internal_error".into()),
        "{}",
        r.text()
    );
    let (code, err) = cli(&db, &["enqueue", "demo-known-total", "-p", "count=1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("run ids are exhausted"), "{err}");
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), runs);
}

/// Over HTTP only: a CLI command on a locked database already fails while
/// opening it (its migration check), which reports an open failure.
#[test]
fn a_database_locked_past_the_busy_timeout_is_busy() {
    let db = TestDb::new("busy");
    let s = db.spawn_serve(&["--no-worker"]);
    let id = db.enqueue("demo-known-total", &["count=1"]);
    let lock = db.conn();
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let answer = error_of(&s.api.post(&format!("/api/jobs/{id}/cancel"), &json!({})));
    lock.execute_batch("ROLLBACK").expect("release the lock");
    assert_eq!(answer, (503, "busy".into(), "busy".into()));
    assert_eq!(db.status_of(id), "QUEUED");
}

#[test]
fn a_refused_audit_row_takes_its_action_back() {
    let db = TestDb::new("auditrefused");
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let queued = db.enqueue("demo-known-total", &["count=1"]);
    let finished = db.enqueue("demo-known-total", &["count=1"]);
    db.ok(&["cancel", &finished.to_string()]);
    let stalled = db.insert_stalled_run();
    refuse_audit_rows(&db);
    let runs = count(&db, "SELECT count(*) FROM JobRun");

    let refused = |r: Resp, what: &str| {
        assert_eq!(
            error_of(&r),
            (500, "database_error".into(), "internal_error".into()),
            "{what}: {}",
            r.text()
        );
        assert!(
            r.text().contains("record audit entry"),
            "{what}: {}",
            r.text()
        );
    };
    refused(
        a.post(
            "/api/jobs",
            &json!({"jobName": "demo-known-total", "parameters": {"count": 1}}),
        ),
        "enqueue",
    );
    refused(
        a.post(&format!("/api/jobs/{queued}/cancel"), &json!({})),
        "cancel",
    );
    refused(
        a.post(&format!("/api/jobs/{finished}/rerun"), &json!({})),
        "rerun",
    );
    refused(a.post("/api/jobs/cleanup-stalled", &json!({})), "cleanup");
    for args in [
        &["enqueue", "demo-known-total", "-p", "count=1"][..],
        &["cancel", &queued.to_string()],
        &["rerun", &finished.to_string()],
        &["cleanup-stalled"],
    ] {
        let (code, err) = cli(&db, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("record audit entry"), "{args:?}: {err}");
    }
    // Nothing changed: no new run, the queued run still queued, the
    // stalled run still RUNNING, and no audit row anywhere.
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), runs);
    assert_eq!(db.status_of(queued), "QUEUED");
    assert_eq!(db.status_of(stalled), "RUNNING");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobRun WHERE id = {queued} AND cancelRequestedAt IS NOT NULL"
        )),
        "0"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM Audit"), 0);
    // The HTTP enqueue did not commit on a second try either.
    let r = a.get("/api/jobs?limit=500");
    assert_eq!(
        r.json()["runs"].as_array().map(Vec::len),
        Some(runs as usize)
    );
}

#[test]
fn a_refused_audit_row_leaves_the_worker_running() {
    let db = TestDb::new("auditstop");
    let s = db.spawn_serve(&["--no-worker"]);
    let _w = db.spawn_worker(&[]);
    wait_for("the worker to run", WAIT, || {
        s.api.ok("/api/worker")["state"] == "RUNNING"
    });
    refuse_audit_rows(&db);
    let r = s.api.post("/api/worker/stop", &json!({}));
    assert_eq!(error_of(&r).0, 500, "{}", r.text());
    let (code, err) = cli(&db, &["worker", "stop"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM Worker WHERE stopRequestedAt IS NOT NULL"),
        "0"
    );
    assert_eq!(s.api.ok("/api/worker")["state"], "RUNNING");
}

#[test]
fn cli_actions_are_audited_with_the_os_user() {
    let db = TestDb::new("cliaudit");
    let ok = |args: &[&str]| {
        let (code, err) = cli(&db, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    };
    ok(&["enqueue", "demo-known-total", "-p", "count=1"]);
    let id = db.scalar("SELECT max(id) FROM JobRun");
    ok(&["cancel", &id]);
    ok(&["rerun", &id]);
    let new = db.scalar("SELECT max(id) FROM JobRun");
    ok(&["cleanup-stalled"]);
    let mut w = db.spawn_worker(&[]);
    wait_for("the worker to run", WAIT, || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    let wid = db.scalar("SELECT id FROM Worker");
    ok(&["worker", "stop"]);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    let rows = db.query("SELECT action, target, source, user, detail FROM Audit ORDER BY id");
    let s = |v: &str| Value::String(v.to_string());
    let row = |action: &str, target: Value, detail: Value| {
        vec![s(action), target, s("cli"), s("audit-tester"), detail]
    };
    assert_eq!(
        rows,
        [
            row(
                "run.enqueue",
                s(&format!("run {id}")),
                s("demo-known-total")
            ),
            row("run.cancel", s(&format!("run {id}")), s("cancelled")),
            row(
                "run.rerun",
                s(&format!("run {id}")),
                s(&format!("new run {new}"))
            ),
            row(
                "runs.cleanup-stalled",
                Value::Null,
                s("0 dead workers, 0 runs")
            ),
            row("worker.stop", s(&format!("worker {wid}")), Value::Null),
        ]
    );
}

#[test]
fn worker_start_answers_at_once_and_the_worker_follows_live() {
    let db = TestDb::new("startnow");
    let s = db.spawn_serve(&["--no-worker"]);
    let mut ws = s.api.ws("/ws");
    let started = Instant::now();
    let r = s.api.post("/api/worker/start", &json!({}));
    let took = started.elapsed();
    assert_eq!(r.status, 202, "{}", r.text());
    // The answer is the status from before the start: the handler does not
    // wait for the new worker to register.
    assert_eq!(r.json()["worker"]["state"], "NONE", "{}", r.text());
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let m = wait_message(&mut ws, "the new worker running", WAIT, |m| {
        m["type"] == "worker" && m["worker"]["state"] == "RUNNING"
    });
    assert_eq!(m["worker"]["supervised"], true);
    let audit = db.query("SELECT action, source, user FROM Audit");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0][0], "worker.start");
    assert!(
        audit[0][1]
            .as_str()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{audit:?}"
    );
    assert_eq!(audit[0][2], Value::Null);
}
