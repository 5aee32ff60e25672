//! `jobmgr check` and the high-water mark. A healthy database passes every
//! check; counters changed by hand are reported; and a WAL that goes back in
//! time (its header damaged after a kill -9, so SQLite ignores every commit
//! in it) is no longer silent: the next worker start, `jobmgr status` and
//! `jobmgr check` say the database is behind the mark the worker kept in
//! its lock file.

mod common;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Runs three quick runs on a worker, which is then stopped with `stop`.
fn three_runs(db: &TestDb) -> common::Worker {
    // The schema first, its free pages reclaimed and checkpointed: the
    // worker's own commits then stay in the WAL (far below the
    // autocheckpoint's 1,000 pages, and with nothing for retention's
    // vacuum, which checkpoints, to reclaim at the worker's start).
    db.ok(&["migrate"]);
    db.conn()
        .execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("vacuum and checkpoint");
    let w = db.spawn_worker(&[]);
    wait_running(db);
    for _ in 0..3 {
        let id = db.enqueue("demo-known-total", &["count=2", "delay_ms=1"]);
        db.wait_status(id, "COMPLETED", WAIT);
    }
    w
}

fn wait_running(db: &TestDb) {
    // Until the worker has created the schema there is no Worker table.
    wait_for("the worker", WAIT, || {
        db.conn()
            .query_row("SELECT 1 FROM Worker WHERE state = 'RUNNING'", [], |_| {
                Ok(())
            })
            .is_ok()
    });
}

fn check(db: &TestDb, json: bool) -> (i32, String) {
    let mut args = vec!["check"];
    if json {
        args.push("--json");
    }
    let out = db.run(&args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_on_a_healthy_database_passes_every_check() {
    let db = TestDb::new("checkok");
    let mut w = three_runs(&db);
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
    // Runs enqueued by another process raise the ids past the mark: fine.
    db.enqueue("demo-known-total", &["count=1"]);
    let (code, text) = check(&db, false);
    assert_eq!(code, 0, "{text}");
    for name in ["integrity", "schema", "run counters", "high-water mark"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(" ok: ")),
            "{name} not ok:\n{text}"
        );
    }
    assert!(text.contains("all checks passed"), "{text}");
    let (code, text) = check(&db, true);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["ok"], true);
    let checks = v["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 4);
    assert!(checks.iter().all(|c| c["ok"] == true), "{v}");
    assert!(!db.ok(&["status"]).contains("WARNING"));
}

#[test]
fn counters_changed_by_hand_are_reported() {
    let db = TestDb::new("checkcount");
    let mut w = three_runs(&db);
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
    db.conn()
        .execute(
            "UPDATE JobRunCounter SET n = n + 5 WHERE status = 'COMPLETED'",
            [],
        )
        .expect("tamper");
    let (code, text) = check(&db, false);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("run counters")
            && l.contains("PROBLEM")
            && l.contains("COMPLETED: counter says 8, rows 3")),
        "{text}"
    );
    assert!(text.contains("1 problem"), "{text}");
    let (code, text) = check(&db, true);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["ok"], false);
    let bad: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(bad, ["run counters"]);
}

#[test]
fn a_wal_damaged_after_kill_9_is_reported_by_the_next_start_status_and_check() {
    let db = TestDb::new("checkwal");
    let mut w = three_runs(&db);
    // kill -9: the WAL keeps every commit since the worker created the file.
    w.signal("KILL");
    w.wait_exit(WAIT);
    let wal = db.path.with_file_name("jobmgr.db-wal");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("the WAL is there");
    file.write_all_at(&[0xA5; 32], 0)
        .expect("damage the header");
    drop(file);

    let status = db.ok(&["status"]);
    assert!(status.contains("none has ever run"), "{status}");
    assert!(
        status.contains("WARNING: the database is behind its high-water mark"),
        "{status}"
    );
    assert!(status.contains("run 3 was claimed"), "{status}");
    let out = db.run(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        v["behindHighWaterMark"]
            .as_str()
            .is_some_and(|s| s.contains("behind")),
        "{v}"
    );

    let (code, text) = check(&db, false);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("high-water mark") && l.contains("PROBLEM")),
        "{text}"
    );

    // The next start says so at error level, and keeps the mark: status
    // still warns afterwards.
    let mut next = db.spawn_worker(&[]);
    wait_for("the next worker to warn", WAIT, || {
        next.log_text()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("behind its high-water mark"))
    });
    wait_running(&db);
    next.signal("TERM");
    assert_eq!(next.wait_exit(WAIT), Some(0), "{}", next.log_text());
    assert!(
        db.ok(&["status"]).contains("WARNING"),
        "{}",
        next.log_text()
    );
    assert_eq!(check(&db, false).0, 1);
}

#[test]
fn a_migration_missing_from_the_history_is_reported_and_a_missing_file_is_an_error() {
    let db = TestDb::new("checkschema");
    db.ok(&["migrate"]);
    let latest = db.scalar(
        "SELECT 'V' || version || '__' || name FROM refinery_schema_history \
         ORDER BY version DESC LIMIT 1",
    );
    db.conn()
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) \
             FROM refinery_schema_history)",
            [],
        )
        .expect("tamper");
    let (code, text) = check(&db, false);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("schema")
                && l.contains(&format!("PROBLEM: not applied: {latest}"))),
        "{text}"
    );

    let gone = TestDb::new("checkgone");
    let err = gone.fails(&["check"]);
    assert!(err.contains("no such database file"), "{err}");
    assert!(!gone.path.exists(), "check created the file");
}

#[test]
fn check_names_the_highest_version_as_the_latest_migration() {
    // By name V9 sorts after V17; the latest is the highest version.
    let db = TestDb::new("checklatest");
    db.ok(&["migrate"]);
    let latest = db.scalar(
        "SELECT 'V' || version || '__' || name FROM refinery_schema_history \
         ORDER BY version DESC LIMIT 1",
    );
    let (code, text) = check(&db, false);
    assert_eq!(code, 0, "{text}");
    let schema = text
        .lines()
        .find(|l| l.starts_with("schema"))
        .unwrap_or_default();
    assert!(
        schema.ends_with(&format!("(latest {latest})")),
        "expected the latest to be {latest}: {schema}"
    );
}
