//! Bulk actions carried out in the background, as durable `BulkAction`
//! records: `POST /api/jobs/bulk` answers 202 at once with the action's id
//! and total and `GET /api/jobs/bulk/ID` follows it to the end; `serve`
//! killed with SIGKILL mid-action carries it on after a restart, so every
//! matching run is acted on exactly once; a CLI killed mid-action leaves it
//! INTERRUPTED with what it did (never carried on behind the user's back);
//! dry runs stop counting at their cap.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestDb, poll_until, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const MANY: i64 = 20_000;

/// Inserts `n` runs of `demo-known-total` in `status` straight into the
/// file, each with `lines` log lines.
fn seed(db: &TestDb, status: &str, n: i64, lines: i64) {
    let c = db.conn();
    let finished = matches!(status, "COMPLETED" | "FAILED" | "CANCELLED");
    c.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
         INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
         error, updatedAt) SELECT 'demo-known-total', ?2, '{}', '2026-12-01T10:00:00.000Z', \
         CASE WHEN ?3 THEN '2026-12-01T10:00:00.000Z' END, \
         CASE WHEN ?3 THEN '2026-12-01T10:00:01.000Z' END, \
         CASE WHEN ?2 = 'FAILED' THEN 'boom' END, '2026-12-01T10:00:00.000Z' FROM k",
        rusqlite::params![n, status, finished],
    )
    .expect("seed runs");
    if lines > 0 {
        c.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?2) \
             INSERT INTO JobLog (jobRunId, level, message, timestamp) \
             SELECT r.id, 'info', 'line ' || k.i, r.createdAt FROM JobRun r, k WHERE r.status = ?1",
            rusqlite::params![status, lines],
        )
        .expect("seed log lines");
    }
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).parse().expect("a count")
}

fn new_db(name: &str) -> TestDb {
    let db = TestDb::new(name);
    db.ok(&["migrate"]);
    db
}

/// Runs that are a re-run of another, and distinct runs re-run.
fn reruns(db: &TestDb) -> (i64, i64) {
    (
        count(
            db,
            "SELECT count(*) FROM JobRun WHERE rerunOfId IS NOT NULL",
        ),
        count(
            db,
            "SELECT count(DISTINCT rerunOfId) FROM JobRun WHERE rerunOfId IS NOT NULL",
        ),
    )
}

/// Polls `GET /api/jobs/bulk/ID` until the action is no longer RUNNING;
/// returns every answer seen.
fn follow(api: &common::http::Api, id: &Value) -> Vec<Value> {
    let path = format!("/api/jobs/bulk/{id}");
    let mut seen: Vec<Value> = vec![];
    let ended = poll_until(WAIT, || {
        let v = api.ok(&path);
        let running = v["status"] == "RUNNING";
        seen.push(v);
        !running
    });
    assert!(ended, "still running: {:?}", seen.last());
    seen
}

#[test]
fn a_bulk_rerun_of_20000_runs_answers_202_at_once_and_its_progress_reaches_done() {
    let db = new_db("bulk-bg-202");
    seed(&db, "FAILED", MANY, 0);
    seed(&db, "COMPLETED", 10, 0);
    let s = db.spawn_serve(&["--no-worker"]);
    let asked = Instant::now();
    let r = s.api.post(
        "/api/jobs/bulk",
        &json!({"action": "rerun", "filter": {"status": ["FAILED"]}}),
    );
    let answered = asked.elapsed();
    assert_eq!(r.status, 202, "{}", r.text());
    let started = r.json();
    assert_eq!(
        (started["total"].clone(), started["status"].clone()),
        (json!(MANY), json!("RUNNING")),
        "{started}"
    );
    assert!(
        answered < Duration::from_secs(5),
        "the answer took {answered:?}"
    );
    let seen = follow(&s.api, &started["id"]);
    let last = seen.last().expect("an answer");
    assert_eq!(last["status"], "DONE", "{last}");
    assert_eq!(
        (last["done"].clone(), last["acted"].clone()),
        (json!(MANY), json!(MANY)),
        "{last}"
    );
    assert!(last["finishedAt"].is_string(), "{last}");
    let done: Vec<i64> = seen.iter().filter_map(|v| v["done"].as_i64()).collect();
    assert!(
        done.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {done:?}"
    );
    assert_eq!(reruns(&db), (MANY, MANY));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM Audit WHERE action = 'runs.bulk-rerun' \
             AND json_extract(detail, '$.done') AND json_extract(detail, '$.acted') = 20000"
        ),
        1
    );

    // Like every API route, progress needs the token.
    let anon = common::http::request(&s.api.addr, "GET", "/api/jobs/bulk/1", &[], None);
    assert_eq!(anon.status, 401, "{}", anon.text());
    // Unknown actions are 404, like unknown runs.
    for path in ["/api/jobs/bulk/999", "/api/jobs/bulk/abc"] {
        let r = s.api.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.error_code(), "not_found", "{path}");
    }
}

#[test]
fn serve_killed_mid_bulk_rerun_carries_it_on_after_restart_rerunning_each_run_once() {
    let db = new_db("bulk-bg-kill");
    seed(&db, "FAILED", MANY, 1);
    let mut s = db.spawn_serve(&["--no-worker"]);
    let r = s.api.post(
        "/api/jobs/bulk",
        &json!({"action": "rerun", "filter": {"status": ["FAILED"]}}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].clone();
    let caught = poll_until(WAIT, || reruns(&db).0 >= 1000);
    assert!(caught, "no re-runs made");
    s.signal("KILL");
    s.wait_exit(WAIT);
    let (partial, _) = reruns(&db);
    assert!(
        partial < MANY,
        "the action ended before the kill: {partial}"
    );
    // The record is exactly as far as the committed batches.
    let row = db.query(&format!(
        "SELECT status, done, json_extract(report, '$.acted') FROM BulkAction WHERE id = {id}"
    ));
    assert_eq!(
        row,
        vec![vec![json!("RUNNING"), json!(partial), json!(partial)]]
    );

    let s = db.spawn_serve(&["--no-worker"]);
    let seen = follow(&s.api, &id);
    let last = seen.last().expect("an answer");
    assert_eq!(last["status"], "DONE", "{last}");
    assert_eq!(
        (last["done"].clone(), last["acted"].clone()),
        (json!(MANY), json!(MANY)),
        "{last}"
    );
    assert_eq!(reruns(&db), (MANY, MANY), "a run re-run twice or missed");
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobRun WHERE status = 'FAILED'"),
        MANY
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM JobLog"),
        MANY,
        "log lines lost"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM Audit WHERE action = 'runs.bulk-rerun' \
             AND json_extract(detail, '$.done') AND json_extract(detail, '$.acted') = 20000"
        ),
        1,
        "one audit row, brought to the end"
    );
    assert!(
        s.log_text().contains("carrying on bulk action"),
        "{}",
        s.log_text()
    );
    db.ok(&["check"]);
}

#[test]
fn a_cli_bulk_action_prints_its_count_and_a_killed_one_is_left_interrupted() {
    let db = new_db("bulk-bg-cli");
    seed(&db, "COMPLETED", MANY, 1);
    // Killed mid-way: the row keeps what was done and is not carried on.
    let mut child = db
        .cmd()
        .args(["delete", "--status", "COMPLETED", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start jobmgr delete");
    let gone = || MANY - count(&db, "SELECT count(*) FROM JobRun");
    let mut exited = false;
    let caught = poll_until(WAIT, || {
        exited = matches!(child.try_wait(), Ok(Some(_)));
        exited || gone() >= 1000
    });
    assert!(caught && !exited, "the delete ended before it was killed");
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let partial = gone();
    assert!(partial < MANY, "killed after the end");

    // A server does not carry on a CLI's action: it marks it INTERRUPTED.
    let s = db.spawn_serve(&["--no-worker"]);
    wait_for("the CLI's action to be marked interrupted", WAIT, || {
        db.scalar("SELECT status FROM BulkAction WHERE id = 1") == "INTERRUPTED"
    });
    let v = s.api.ok("/api/jobs/bulk/1");
    assert_eq!(v["done"], partial, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("issue the command again to finish"),
        "{v}"
    );
    assert_eq!(gone(), partial, "the server went on deleting");
    drop(s);

    let out = db.ok(&["delete", "--status", "COMPLETED", "--yes"]);
    let rest = MANY - partial;
    assert!(
        out.contains(&format!("{rest} matching runs to delete (bulk action 2)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{rest} deleted, with {rest} log lines")),
        "{out}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM JobRun"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM JobLog"), 0);
    assert_eq!(
        db.query("SELECT status, done FROM BulkAction ORDER BY id"),
        vec![
            vec![json!("INTERRUPTED"), json!(partial)],
            vec![json!("DONE"), json!(rest)]
        ]
    );
}

#[test]
fn a_dry_run_stops_counting_at_its_cap() {
    let db = new_db("bulk-bg-cap");
    seed(&db, "FAILED", 100_001, 0);
    let s = db.spawn_serve(&["--no-worker"]);
    let r = s.api.post(
        "/api/jobs/bulk",
        &json!({"action": "rerun", "filter": {"status": ["FAILED"]}, "dryRun": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["matched"].clone(), r.json()["capped"].clone()),
        (json!(100_000), json!(true))
    );
    db.conn()
        .execute("DELETE FROM JobRun WHERE id > 99999", [])
        .expect("delete two");
    let r = s.api.post(
        "/api/jobs/bulk",
        &json!({"action": "rerun", "filter": {"status": ["FAILED"]}, "dryRun": true}),
    );
    assert_eq!(
        (r.json()["matched"].clone(), r.json()["capped"].clone()),
        (json!(99_999), json!(false))
    );
    let err = db.fails(&["rerun", "--status", "FAILED"]);
    assert!(
        err.contains("99999 runs match; nothing was changed"),
        "{err}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM BulkAction"), 0);
}
