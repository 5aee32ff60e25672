//! Bulk actions over a history filter, through the CLI and the HTTP API:
//! cancel, re-run and delete touch only the runs the filter selects and the
//! action applies to, more than one run needs `--yes`, bad input changes
//! nothing, each action leaves one audit row with its filter and final
//! count, and a bulk action killed with SIGKILL mid-way and issued again
//! loses nothing and does nothing twice.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestDb, poll_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Inserts `n` runs of `name` in `status` created at `created`, each with
/// `lines` log lines, straight into the file (with the counting triggers).
fn seed(db: &TestDb, name: &str, status: &str, created: &str, n: usize, lines: usize) {
    let c = db.conn();
    let finished = matches!(status, "COMPLETED" | "FAILED" | "CANCELLED");
    let started = status != "QUEUED" && status != "SCHEDULED";
    c.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
         INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
         error, updatedAt) SELECT ?2, ?3, '{}', ?4, CASE WHEN ?5 THEN ?4 END, \
         CASE WHEN ?6 THEN ?4 END, CASE WHEN ?3 = 'FAILED' THEN 'boom ' || i END, ?4 FROM k",
        rusqlite::params![n as i64, name, status, created, started, finished],
    )
    .expect("seed runs");
    if lines > 0 {
        let last = c.last_insert_rowid();
        c.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?3) \
             INSERT INTO JobLog (jobRunId, level, message, timestamp) \
             SELECT r.id, 'info', 'line ' || k.i, r.createdAt FROM JobRun r, k \
             WHERE r.id > ?1 - ?2 AND r.id <= ?1",
            rusqlite::params![last, n as i64, lines as i64],
        )
        .expect("seed log lines");
    }
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).parse().expect("a count")
}

fn json_out(db: &TestDb, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&db.ok(&all)).expect("JSON output")
}

fn new_db(name: &str) -> TestDb {
    let db = TestDb::new(name);
    db.ok(&["migrate"]);
    db
}

/// (action, target, detail) of the newest audit row.
fn last_audit(db: &TestDb) -> (String, Value, Value) {
    let row = db.query("SELECT action, target, detail FROM Audit ORDER BY id DESC LIMIT 1");
    let text = |v: &Value| v.as_str().unwrap_or("null").to_string();
    let r = &row[0];
    (
        text(&r[0]),
        serde_json::from_str(&text(&r[1])).expect("target JSON"),
        serde_json::from_str(&text(&r[2])).expect("detail JSON"),
    )
}

#[test]
fn cli_cancel_needs_yes_for_many_and_touches_only_unfinished_matches() {
    let db = new_db("bulk-cancel");
    seed(
        &db,
        "demo-known-total",
        "QUEUED",
        "2026-12-01T10:00:00.000Z",
        3,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "SCHEDULED",
        "2026-12-01T10:00:00.000Z",
        1,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "RUNNING",
        "2026-12-01T10:00:00.000Z",
        1,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "WAITING",
        "2026-12-01T10:00:00.000Z",
        1,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "COMPLETED",
        "2026-12-01T10:00:00.000Z",
        2,
        0,
    );
    seed(
        &db,
        "demo-unknown-total",
        "QUEUED",
        "2026-12-01T10:00:00.000Z",
        1,
        0,
    );

    let out = db.run(&["cancel", "--name", "demo-known-total"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("6 runs match; nothing was changed: add --yes"),
        "{err}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE status = 'CANCELLED'"
        ),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM Audit"), 0);

    let r = json_out(&db, &["cancel", "--name", "demo-known-total", "--yes"]);
    assert_eq!(r["matched"], 6, "{r}");
    assert_eq!(r["acted"], 6, "{r}");
    assert_eq!(r["cancelled"], 5, "{r}");
    assert_eq!(r["cancelRequested"], 1, "{r}");
    let by_status = |s: &str| {
        count(
            &db,
            &format!(
                "SELECT count(*) FROM JobRun WHERE jobName = 'demo-known-total' AND status = '{s}'"
            ),
        )
    };
    assert_eq!(by_status("CANCELLED"), 5);
    assert_eq!(by_status("WAITING"), 0);
    assert_eq!(by_status("COMPLETED"), 2);
    assert_eq!(by_status("RUNNING"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE status = 'RUNNING' AND cancelRequestedAt IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        db.scalar("SELECT status FROM JobRun WHERE jobName = 'demo-unknown-total'"),
        "QUEUED"
    );
    let (action, target, detail) = last_audit(&db);
    assert_eq!(action, "runs.bulk-cancel");
    assert_eq!(target["name"], "demo-known-total");
    assert_eq!(detail["acted"], 6);
    assert_eq!(detail["done"], true);
    assert_eq!(
        db.scalar("SELECT source FROM Audit ORDER BY id DESC LIMIT 1"),
        "cli"
    );

    // One match needs no --yes; none is no error.
    let one = db.ok(&[
        "cancel",
        "--status",
        "QUEUED",
        "--name",
        "demo-unknown-total",
    ]);
    assert!(one.contains("1 cancelled"), "{one}");
    let none = db.ok(&["cancel", "--status", "QUEUED"]);
    assert!(none.contains("no runs match"), "{none}");
    // The single-run form still works.
    let id = db.enqueue("demo-known-total", &[]);
    assert!(db.ok(&["cancel", &id.to_string()]).contains("cancelled"));
}

#[test]
fn cli_rerun_over_a_time_range_reruns_each_run_once() {
    let db = new_db("bulk-rerun");
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-11-30T10:00:00.000Z",
        2,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-12-02T10:00:00.000Z",
        3,
        0,
    );
    seed(
        &db,
        "demo-known-total",
        "QUEUED",
        "2026-12-02T10:00:00.000Z",
        1,
        0,
    );

    let err = db.fails(&["rerun", "--status", "FAILED", "--since", "2026-12-01"]);
    assert!(err.contains("3 runs match"), "{err}");
    let r = json_out(
        &db,
        &[
            "rerun",
            "--status",
            "FAILED",
            "--since",
            "2026-12-01",
            "--yes",
        ],
    );
    assert_eq!(
        (r["matched"].clone(), r["acted"].clone()),
        (json!(3), json!(3)),
        "{r}"
    );
    let audit = r["auditId"].as_i64().expect("audit id");
    assert_eq!(
        db.query("SELECT rerunOfId FROM JobRun WHERE rerunOfId IS NOT NULL ORDER BY rerunOfId"),
        vec![vec![json!(3)], vec![json!(4)], vec![json!(5)]]
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM JobRun WHERE rerunOfId IS NOT NULL AND status = 'QUEUED' \
                 AND triggeredBy = 'cli' AND json_extract(metadata, '$.bulkActionId') = {audit}"
            )
        ),
        3
    );
    // The same again re-runs nothing: each of them has its re-run.
    assert!(
        db.ok(&["rerun", "--status", "FAILED", "--since", "2026-12-01"])
            .contains("no runs match")
    );
    let (action, target, detail) = last_audit(&db);
    assert_eq!(action, "runs.bulk-rerun");
    assert_eq!(target["since"], "2026-12-01T00:00:00.000Z");
    assert_eq!(detail["acted"], 3);
    // Without a range the two older ones are left; re-running one by id still works.
    let r = json_out(&db, &["rerun", "--status", "FAILED", "--yes"]);
    assert_eq!(r["acted"], 2, "{r}");
    db.ok(&["rerun", "1"]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobRun WHERE rerunOfId = 1"),
        2
    );
    // Only finished runs are re-run.
    let err = db.fails(&["rerun", "--status", "QUEUED"]);
    assert!(
        err.contains("rerun applies only to COMPLETED, FAILED, CANCELLED runs"),
        "{err}"
    );
}

#[test]
fn cli_delete_removes_only_finished_matches_with_their_logs() {
    let db = new_db("bulk-delete");
    seed(
        &db,
        "demo-known-total",
        "COMPLETED",
        "2026-11-01T10:00:00.000Z",
        4,
        3,
    );
    seed(
        &db,
        "demo-known-total",
        "COMPLETED",
        "2026-12-01T10:00:00.000Z",
        2,
        3,
    );
    seed(
        &db,
        "demo-known-total",
        "RUNNING",
        "2026-11-01T10:00:00.000Z",
        1,
        2,
    );
    seed(
        &db,
        "demo-known-total",
        "QUEUED",
        "2026-11-01T10:00:00.000Z",
        1,
        0,
    );
    db.ok(&["rerun", "1"]);

    let err = db.fails(&["delete"]);
    assert!(err.contains("give a run ID, or a filter"), "{err}");
    let err = db.fails(&["delete", "--all"]);
    assert!(err.contains("6 runs match; nothing was changed"), "{err}");
    let err = db.fails(&["delete", "--status", "RUNNING,QUEUED", "--yes"]);
    assert!(
        err.contains("delete applies only to COMPLETED, FAILED, CANCELLED runs"),
        "{err}"
    );

    let r = json_out(
        &db,
        &[
            "delete",
            "--status",
            "COMPLETED",
            "--until",
            "2026-11-15",
            "--yes",
        ],
    );
    assert_eq!(r["acted"], 4, "{r}");
    assert_eq!(r["logLinesDeleted"], 12, "{r}");
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun WHERE id <= 4"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobLog WHERE jobRunId <= 4"),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobLog"), 3 * 2 + 2);
    // The re-run of run 1 stays, no longer pointing at it.
    assert_eq!(
        db.scalar("SELECT coalesce(rerunOfId, 'none') FROM JobRun WHERE id = 9"),
        "none"
    );
    let (action, target, detail) = last_audit(&db);
    assert_eq!(action, "runs.bulk-delete");
    assert_eq!(target["until"], "2026-11-15T00:00:00.000Z");
    assert_eq!(
        (detail["acted"].clone(), detail["done"].clone()),
        (json!(4), json!(true))
    );

    // One run by id: a running one is refused, a finished one goes with its lines.
    let out = db.run(&["delete", "7"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.status_of(7), "RUNNING");
    assert!(
        db.ok(&["delete", "5"])
            .contains("run 5 deleted, with 3 log lines")
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun WHERE id = 5"), 0);
    assert_eq!(
        db.scalar("SELECT action FROM Audit ORDER BY id DESC LIMIT 1"),
        "run.delete"
    );
    let out = db.run(&["delete", "5"]);
    assert_eq!(out.status.code(), Some(3));
    // --all deletes every finished run, never the running or queued ones.
    db.ok(&["cancel", "9"]);
    let r = json_out(&db, &["delete", "--all", "--yes"]);
    assert_eq!(r["acted"], 2, "{r}");
    assert_eq!(
        db.query("SELECT id, status FROM JobRun ORDER BY id"),
        vec![
            vec![json!(7), json!("RUNNING")],
            vec![json!(8), json!("QUEUED")]
        ]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobLog"), 2);
}

#[test]
fn cli_bad_input_is_refused_and_changes_nothing() {
    let db = new_db("bulk-bad");
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-12-01T10:00:00.000Z",
        2,
        0,
    );
    let err = db.fails(&["rerun", "--status", "FAILD", "--yes"]);
    assert!(err.contains("unknown status 'FAILD'"), "{err}");
    let err = db.fails(&[
        "rerun",
        "--status",
        "FAILED",
        "--since",
        "yesterday",
        "--yes",
    ]);
    assert!(err.contains("--since must be a date"), "{err}");
    let out = db.run(&["cancel", "1", "--status", "QUEUED"]);
    assert_eq!(out.status.code(), Some(2));
    let err = db.fails(&["rerun"]);
    assert!(err.contains("give a run ID, or a filter"), "{err}");
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM Audit"), 0);
}

#[test]
fn api_bulk_actions_count_act_and_refuse_bad_input() {
    let db = new_db("bulk-api");
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-12-01T10:00:00.000Z",
        3,
        1,
    );
    seed(
        &db,
        "demo-multi-phase",
        "QUEUED",
        "2026-12-01T10:00:00.000Z",
        2,
        0,
    );
    seed(
        &db,
        "demo-multi-phase",
        "COMPLETED",
        "2026-11-01T10:00:00.000Z",
        2,
        1,
    );
    let s = db.spawn_serve(&["--no-worker"]);
    let a = &s.api;
    let post = |body: Value| {
        let r = a.post("/api/jobs/bulk", &body);
        (r.status, r.json())
    };
    // A bulk action answers 202 at once; its progress says when it is done.
    let act = |body: Value| {
        let (st, r) = post(body);
        assert_eq!(st, 202, "{r}");
        assert_eq!(r["status"], "RUNNING", "{r}");
        finished(a, &r)
    };

    let (st, r) =
        post(json!({"action": "rerun", "filter": {"status": ["FAILED"]}, "dryRun": true}));
    assert_eq!((st, r["matched"].clone()), (200, json!(3)), "{r}");
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), 7);
    let r =
        act(json!({"action": "rerun", "filter": {"status": ["FAILED"], "name": "", "q": "boom"}}));
    assert_eq!(
        (r["matched"].clone(), r["acted"].clone()),
        (json!(3), json!(3)),
        "{r}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE rerunOfId IN (1, 2, 3) AND triggeredBy = 'rerun'"
        ),
        3
    );

    let r = act(json!({"action": "cancel", "filter": {"name": "demo-multi-phase"}}));
    assert_eq!(
        (r["matched"].clone(), r["cancelled"].clone()),
        (json!(2), json!(2)),
        "{r}"
    );

    let r = act(json!({"action": "delete", "filter": {"until": "2026-11-15"}}));
    assert_eq!(
        (r["acted"].clone(), r["logLinesDeleted"].clone()),
        (json!(2), json!(2)),
        "{r}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobRun WHERE id IN (6, 7)"),
        0
    );
    let (_, _, detail) = last_audit(&db);
    assert_eq!(detail["acted"], 2);
    let source = db.scalar("SELECT source FROM Audit ORDER BY id DESC LIMIT 1");
    assert!(source.starts_with("127.0.0.1:"), "{source}");

    // Bad input: 400 with a message, nothing changed.
    let before = count(&db, "SELECT count(*) FROM JobRun");
    let audits = count(&db, "SELECT count(*) FROM Audit");
    for (body, message) in [
        (
            json!({"action": "purge", "filter": {}}),
            "unknown action 'purge'",
        ),
        (
            json!({"action": "rerun", "filter": {"status": ["FAILD"]}}),
            "unknown status 'FAILD'",
        ),
        (
            json!({"action": "delete", "filter": {}}),
            "refusing to delete every finished run",
        ),
        (
            json!({"action": "delete", "filter": {"name": " "}}),
            "refusing to delete every finished run",
        ),
        (
            json!({"action": "cancel", "filter": {"status": ["COMPLETED"]}}),
            "cancel applies only to",
        ),
        (
            json!({"action": "rerun", "filter": {"since": "soon"}}),
            "filter.since must be a date",
        ),
        (
            json!({"action": "rerun", "filter": {"statuses": ["FAILED"]}}),
            "unknown field",
        ),
        (json!({"filter": {}}), "missing field `action`"),
    ] {
        let r = a.post("/api/jobs/bulk", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let text = r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(text.contains(message), "{body}: {text}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), before);
    assert_eq!(count(&db, "SELECT count(*) FROM Audit"), audits);

    // Every finished run only with all: true, from the page as from a script.
    let r = a.post_as_page(
        "/api/jobs/bulk",
        &json!({"action": "delete", "filter": {}, "all": true}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(finished(a, &r.json())["acted"], 5);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        ),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), 3);
}

/// Bulk action `started` (a 202 answer) once it is no longer RUNNING.
fn finished(a: &common::http::Api, started: &Value) -> Value {
    let path = format!("/api/jobs/bulk/{}", started["id"]);
    let mut last = Value::Null;
    let done = poll_until(WAIT, || {
        last = a.ok(&path);
        last["status"] != "RUNNING"
    });
    assert!(done, "bulk action still running: {last}");
    assert_eq!(last["status"], "DONE", "{last}");
    last
}

/// Starts `jobmgr args...` and kills it with SIGKILL once `started` is
/// true, or panics if it finished first.
fn kill_midway(db: &TestDb, args: &[&str], started: impl Fn() -> bool) {
    let mut child = db
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start jobmgr");
    let mut finished = false;
    let caught = poll_until(WAIT, || {
        finished = matches!(child.try_wait(), Ok(Some(_)));
        finished || started()
    });
    assert!(
        caught && !finished,
        "the bulk action finished before it could be killed"
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

const MANY: usize = 10_000;

#[test]
fn a_bulk_rerun_killed_midway_and_issued_again_reruns_each_run_once() {
    let db = new_db("bulk-kill-rerun");
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-12-01T10:00:00.000Z",
        MANY,
        0,
    );
    let reruns = || {
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE rerunOfId IS NOT NULL",
        )
    };
    let args = ["rerun", "--status", "FAILED", "--yes"];
    kill_midway(&db, &args, || reruns() >= 1000);
    let partial = reruns();
    assert!(partial < MANY as i64, "killed after the end: {partial}");
    let detail = db.scalar("SELECT detail FROM Audit WHERE action = 'runs.bulk-rerun'");
    let detail: Value = serde_json::from_str(&detail).expect("detail");
    assert_eq!(detail["done"], false, "{detail}");
    assert_eq!(
        detail["acted"], partial,
        "the audit row counts what committed"
    );

    let r = json_out(&db, &args);
    assert_eq!(r["acted"], MANY as i64 - partial, "{r}");
    assert_eq!(reruns(), MANY as i64);
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT rerunOfId) FROM JobRun WHERE rerunOfId IS NOT NULL"
        ),
        MANY as i64,
        "a run was re-run twice"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobRun WHERE status = 'FAILED'"),
        MANY as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM Audit WHERE action = 'runs.bulk-rerun'"
        ),
        2
    );
    db.ok(&["check"]);
}

#[test]
fn a_bulk_delete_killed_midway_and_issued_again_loses_nothing_else() {
    let db = new_db("bulk-kill-delete");
    seed(
        &db,
        "demo-known-total",
        "COMPLETED",
        "2026-12-01T10:00:00.000Z",
        MANY,
        2,
    );
    seed(
        &db,
        "demo-known-total",
        "FAILED",
        "2026-12-01T10:00:00.000Z",
        10,
        2,
    );
    seed(
        &db,
        "demo-known-total",
        "RUNNING",
        "2026-12-01T10:00:00.000Z",
        1,
        2,
    );
    let gone = || {
        MANY as i64
            - count(
                &db,
                "SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'",
            )
    };
    let args = ["delete", "--status", "COMPLETED", "--yes"];
    kill_midway(&db, &args, || gone() >= 1000);
    let partial = gone();
    assert!(partial < MANY as i64, "killed after the end: {partial}");
    // A batch is whole or absent: no run of it lost its lines alone.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun r WHERE (SELECT count(*) FROM JobLog l WHERE l.jobRunId = r.id) <> 2"
        ),
        0
    );

    let r = json_out(&db, &args);
    assert_eq!(r["acted"], MANY as i64 - partial, "{r}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'"
        ),
        0
    );
    assert_eq!(
        db.query("SELECT status, count(*) FROM JobRun GROUP BY status ORDER BY status"),
        vec![
            vec![json!("FAILED"), json!(10)],
            vec![json!("RUNNING"), json!(1)]
        ]
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobLog"), 22);
    db.ok(&["check"]);
}
