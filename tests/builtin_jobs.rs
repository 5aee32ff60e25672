//! The maintenance job types (prune-history, backup-database), following a
//! run's log, and what `status` shows of an overdue STOPPING worker.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn prune_history_deletes_old_finished_runs_and_their_logs_only() {
    let db = TestDb::new("prune");
    let old: Vec<i64> = (0..3)
        .map(|_| db.enqueue("demo-known-total", &["count=2", "delay_ms=0"]))
        .collect();
    let recent = db.enqueue("demo-known-total", &["count=2", "delay_ms=0"]);
    let queued_old = db.enqueue("demo-known-total", &[]);
    let w = db.spawn_worker(&["--concurrency", "1"]);
    for id in old.iter().chain([&recent]) {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    drop(w);
    db.ok(&["cancel", &queued_old.to_string()]);
    db.conn()
        .execute_batch(&format!(
            "UPDATE JobRun SET finishedAt = '2020-01-01T00:00:00.000Z' WHERE id IN ({}, {}, {});",
            old[0], old[1], old[2]
        ))
        .unwrap();
    let old_lines: i64 = db
        .scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId IN ({}, {}, {})",
            old[0], old[1], old[2]
        ))
        .parse()
        .unwrap();
    assert!(old_lines > 0);
    // Retention would remove them itself at worker start: this is about
    // the job.
    std::fs::write(db.dir.join("jobmgr.toml"), "[retention]\nenabled = false\n").unwrap();
    let prune = db.enqueue("prune-history", &["older_than_days=30"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(prune, "COMPLETED", WAIT);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobRun WHERE id IN ({}, {}, {})",
            old[0], old[1], old[2]
        )),
        "0"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId IN ({}, {}, {})",
            old[0], old[1], old[2]
        )),
        "0"
    );
    assert_eq!(db.status_of(recent), "COMPLETED");
    assert_eq!(db.status_of(queued_old), "CANCELLED");
    let summary: Value = serde_json::from_str(&db.scalar(&format!(
        "SELECT outcomeSummary FROM JobRun WHERE id = {prune}"
    )))
    .unwrap();
    assert_eq!(summary["deletes"], 3);
    assert_eq!(summary["logLinesDeleted"], old_lines);
    assert_eq!(
        db.scalar(&format!(
            "SELECT entitiesProcessed || '/' || entitiesTotal FROM JobRun WHERE id = {prune}"
        )),
        "3/3"
    );
    // The counters the statistics read still agree with the rows after
    // the deletes (and the status changes before them).
    let drift = db.scalar(
        "SELECT count(*) FROM JobRunCount c WHERE c.n <> \
         (SELECT count(*) FROM JobRun r WHERE c.status IN ('ALL', r.status))",
    );
    assert_eq!(drift, "0");
}

#[test]
fn backup_database_copies_the_live_file_and_refuses_to_overwrite() {
    let db = TestDb::new("backup");
    for _ in 0..5 {
        db.enqueue("demo-known-total", &["count=1"]);
    }
    let dest = db.dir.join("copy.db");
    let dest_s = dest.to_str().unwrap().to_string();
    let id = db.enqueue("backup-database", &[&format!("path={dest_s}")]);
    let _w = db.spawn_worker(&["--concurrency", "1"]);
    db.wait_status(id, "COMPLETED", WAIT);
    let copy = rusqlite::Connection::open(&dest).unwrap();
    let runs: i64 = copy
        .query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
        .unwrap();
    assert!(runs >= 6, "{runs}");
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let r = &db.query(&format!(
        "SELECT entitiesProcessed, entitiesTotal, entitiesUnit, currentStage FROM JobRun WHERE id = {id}"
    ))[0];
    assert!(r[1].as_i64().unwrap() > 0);
    assert_eq!(r[0], r[1]);
    assert_eq!(r[2], "pages");
    assert_eq!(r[3], "Copying pages");

    let again = db.enqueue("backup-database", &[&format!("path={dest_s}")]);
    db.wait_status(again, "FAILED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {again}")),
        format!("{dest_s} already exists; choose a new path")
    );
}

#[test]
fn logs_follow_streams_until_the_run_finishes() {
    let db = TestDb::new("follow");
    let id = db.enqueue("demo-known-total", &["count=20", "delay_ms=50"]);
    let follower = db
        .cmd()
        .args(["logs", &id.to_string(), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _w = db.spawn_worker(&[]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(db.status_of(id), "COMPLETED");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("Stage: Processing"), "{text}");
    assert!(
        lines.last().unwrap().contains("done: 20 items processed"),
        "{text}"
    );
    let in_db = db.scalar(&format!(
        "SELECT count(*) FROM JobLog WHERE jobRunId = {id}"
    ));
    assert_eq!(lines.len().to_string(), in_db, "every line exactly once");
}

#[test]
fn a_stopping_worker_past_its_drain_timeout_is_shown_as_such() {
    let db = TestDb::new("overdue");
    db.ok(&["migrate"]);
    let now = db.scalar("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')");
    db.conn()
        .execute(
            "INSERT INTO Worker (hostname, pid, version, state, startedAt, heartbeatAt, stoppingAt) \
             VALUES ('h', 42, 'v', 'STOPPING', '2026-01-01T00:00:00.000Z', ?1, '2026-01-01T00:00:00.000Z')",
            [&now],
        )
        .unwrap();
    let text = db.ok(&["status"]);
    assert!(text.starts_with("worker: STOPPING"), "{text}");
    assert!(text.contains("past its drain timeout"), "{text}");
    let json: Value = serde_json::from_str(&db.ok(&["status", "--json"])).unwrap();
    assert!(json["worker"]["stoppingOverdueMs"].as_i64().unwrap() > 0);
    wait_for("the row to go stale", WAIT, || {
        db.ok(&["status"]).starts_with("worker: STALE")
    });
}
