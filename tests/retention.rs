//! Retention, on by default: the worker removes old finished runs (with
//! their log lines) at start and then hourly, on the one clock, which these
//! tests drive (no waiting an hour); what it keeps, when it ran and what it
//! removed are in `jobmgr status`. Also the disk guard.

mod common;

use std::time::Duration;

use common::clock::{DrivenClock, timestamp_text};
use common::{TestDb, Worker, wait_for};
use serde_json::Value;

/// 2031-01-01T00:00:00Z.
const START_MS: i64 = 1_924_992_000_000;
const DAY_MS: i64 = 86_400_000;

/// A migrated database on a driven clock, with `config` as its jobmgr.toml.
fn setup(name: &str, config: &str) -> (TestDb, DrivenClock) {
    let db = TestDb::new(name);
    let clock = DrivenClock::new(&db, START_MS);
    std::fs::write(db.dir.join("jobmgr.toml"), config).expect("write config");
    db.ok(&["migrate"]);
    (db, clock)
}

/// Inserts a run of `status` that finished `days_ago` days before the
/// clock's start (unfinished when None), with `lines` log lines.
fn insert_run(db: &TestDb, status: &str, days_ago: Option<i64>, lines: usize) -> i64 {
    let c = db.conn();
    let created = timestamp_text(START_MS - 100 * DAY_MS);
    let finished = days_ago.map(|d| timestamp_text(START_MS - d * DAY_MS));
    c.execute(
        "INSERT INTO JobRun (jobName, status, createdAt, finishedAt, updatedAt) \
         VALUES ('demo-known-total', ?1, ?2, ?3, ?2)",
        rusqlite::params![status, created, finished],
    )
    .expect("insert run");
    let id = c.last_insert_rowid();
    let text = "x".repeat(400);
    c.execute_batch("BEGIN").expect("begin");
    for i in 0..lines {
        c.execute(
            "INSERT INTO JobLog (jobRunId, level, message, timestamp) VALUES (?1, 'info', ?2, ?3)",
            rusqlite::params![id, format!("{i} {text}"), created],
        )
        .expect("insert log line");
    }
    c.execute_batch("COMMIT").expect("commit");
    id
}

fn exists(db: &TestDb, id: i64) -> bool {
    db.scalar(&format!("SELECT count(*) FROM JobRun WHERE id = {id}")) == "1"
}

fn log_lines(db: &TestDb, id: i64) -> i64 {
    db.scalar(&format!(
        "SELECT count(*) FROM JobLog WHERE jobRunId = {id}"
    ))
    .parse()
    .expect("a count")
}

/// Starts a worker on the driven clock, housekeeping ticking every 100 ms.
fn start_worker(db: &TestDb, clock: &DrivenClock) -> Worker {
    let mut cmd = db.cmd();
    clock.apply(&mut cmd);
    cmd.env("JOBMGR_HOUSEKEEPING_MS", "100")
        .args(["worker", "--concurrency", "1"]);
    db.spawn_worker_cmd(cmd, "worker.log")
}

/// `jobmgr status --json`'s housekeeping part.
fn housekeeping(db: &TestDb, clock: &DrivenClock) -> Value {
    let mut cmd = db.cmd();
    clock.apply(&mut cmd);
    let out = cmd.args(["status", "--json"]).output().expect("run status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    v["housekeeping"].clone()
}

/// Waits until retention has reported a run at the clock's current time.
fn wait_for_retention(db: &TestDb, clock: &DrivenClock, worker: &Worker) -> Value {
    let at = timestamp_text(clock.now_ms());
    let mut report = Value::Null;
    wait_for(
        "retention to report a run at the clock's time",
        Duration::from_secs(60),
        || {
            let rows = db.query("SELECT report FROM Housekeeping WHERE name = 'retention'");
            let Some(text) = rows.first().and_then(|r| r[0].as_str().map(String::from)) else {
                return false;
            };
            report = serde_json::from_str(&text).unwrap_or(Value::Null);
            report["ranAt"] == at.as_str()
        },
    );
    assert!(
        report["stopped"].is_null(),
        "{report}\n{}",
        worker.log_text()
    );
    report
}

#[test]
fn old_finished_runs_and_their_logs_go_young_and_unfinished_ones_stay() {
    let (db, clock) = setup(
        "ret-age",
        "[retention]\nfinished_days = 30\nfailed_days = 60\n",
    );
    let old_done = insert_run(&db, "COMPLETED", Some(40), 30);
    let old_cancelled = insert_run(&db, "CANCELLED", Some(31), 2);
    let young_done = insert_run(&db, "COMPLETED", Some(10), 3);
    let failed_kept = insert_run(&db, "FAILED", Some(40), 3);
    let failed_old = insert_run(&db, "FAILED", Some(70), 3);
    // Audit rows go past the longer horizon (failed_days), not before.
    let c = db.conn();
    for (days, what) in [(70, "old"), (40, "kept")] {
        c.execute(
            "INSERT INTO Audit (at, action, target, source) VALUES (?1, ?2, 'x', 'test')",
            rusqlite::params![timestamp_text(START_MS - days * DAY_MS), what],
        )
        .expect("insert audit row");
    }
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);

    for gone in [old_done, old_cancelled, failed_old] {
        assert!(!exists(&db, gone), "run {gone} should be gone: {report}");
        assert_eq!(log_lines(&db, gone), 0, "run {gone}'s log lines");
    }
    for kept in [young_done, failed_kept] {
        assert!(exists(&db, kept), "run {kept} should be kept: {report}");
    }
    assert_eq!(log_lines(&db, young_done), 3);
    assert_eq!(log_lines(&db, failed_kept), 3);
    assert_eq!(report["runsRemoved"], 3, "{report}");
    assert_eq!(report["logLinesRemoved"], 35, "{report}");
    assert_eq!(report["auditRowsRemoved"], 1, "{report}");
    assert_eq!(db.scalar("SELECT group_concat(action) FROM Audit"), "kept");
    // The run counters follow the deletes.
    assert_eq!(
        db.scalar("SELECT n FROM JobRunCount WHERE status = 'COMPLETED'"),
        "1"
    );

    let h = housekeeping(&db, &clock);
    assert_eq!(h["retention"]["settings"]["finishedDays"], 30, "{h}");
    assert_eq!(h["retention"]["settings"]["failedDays"], 60, "{h}");
    assert_eq!(h["retention"]["runsRemoved"], 3, "{h}");
    assert_eq!(
        h["retention"]["nextRunAt"],
        timestamp_text(START_MS + 3_600_000).as_str()
    );
    let text = db.ok(&["status"]);
    assert!(
        text.contains("retention: keeps finished runs 30 days, failed runs 60 days"),
        "{text}"
    );
    assert!(
        text.contains("removed 3 runs, 35 log lines, 1 audit rows"),
        "{text}"
    );

    // A run that is still running when it is 40 days old stays.
    let running = db.enqueue("demo-known-total", &["count=100000", "delay_ms=100"]);
    db.wait_status(running, "RUNNING", Duration::from_secs(60));
    // An hour or more later on the clock retention runs again, with the
    // horizon moved: 40 days on, every finished run is past it.
    clock.advance(40 * DAY_MS);
    let again = wait_for_retention(&db, &clock, &worker);
    assert!(!exists(&db, young_done), "{again}");
    assert!(!exists(&db, failed_kept), "{again}");
    assert_eq!(again["runsRemoved"], 2, "{again}");
    assert_eq!(db.status_of(running), "RUNNING", "{again}");
}

#[test]
fn max_runs_keeps_the_newest_finished_runs() {
    let (db, clock) = setup("ret-max", "[retention]\nmax_runs = 4\n");
    let ids: Vec<i64> = (0..10)
        .map(|i| {
            insert_run(
                &db,
                if i % 3 == 0 { "FAILED" } else { "COMPLETED" },
                Some(20 - i),
                2,
            )
        })
        .collect();
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(exists(&db, *id), i >= 6, "run {id} (#{i}): {report}");
    }
    assert_eq!(report["byMaxRuns"], 6, "{report}");
    assert_eq!(report["finishedRuns"], 4, "{report}");
}

#[test]
fn retention_disabled_keeps_everything() {
    let (db, clock) = setup(
        "ret-off",
        "[retention]\nenabled = false\nfinished_days = 1\n",
    );
    let old = insert_run(&db, "COMPLETED", Some(400), 5);
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);
    assert!(exists(&db, old));
    assert_eq!(log_lines(&db, old), 5);
    assert_eq!(report["runsRemoved"], 0);
    assert_eq!(report["settings"]["enabled"], false);
    let text = db.ok(&["status"]);
    assert!(text.contains("retention: disabled"), "{text}");
}

#[test]
fn the_file_gets_smaller() {
    let (db, clock) = setup("ret-shrink", "");
    assert_eq!(
        db.scalar("PRAGMA auto_vacuum"),
        "2",
        "a new file is incremental"
    );
    let young = insert_run(&db, "COMPLETED", Some(1), 10);
    for _ in 0..40 {
        insert_run(&db, "COMPLETED", Some(60), 500);
    }
    let size = || {
        db.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        std::fs::metadata(&db.path).expect("stat database").len()
    };
    let before = size();
    assert!(before > 8_000_000, "{before} bytes");
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);
    drop(worker);
    let after = size();
    assert!(
        after < before / 4,
        "the file went from {before} to {after} bytes: {report}"
    );
    assert!(
        report["pagesReturned"].as_u64().unwrap_or(0) > 1_000,
        "{report}"
    );
    assert_eq!(report["autoVacuum"], "incremental");
    assert!(exists(&db, young));
    assert_eq!(log_lines(&db, young), 10);
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
}

#[test]
fn check_config_reports_bad_retention_settings_with_their_lines() {
    let db = TestDb::new("ret-check");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[retention]\nfinished_days = 0\nmax_rums = 5\n",
    )
    .expect("write config");
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: retention.finished_days: must be between 1 and 36500, got 0"),
        "{err}"
    );
    assert!(
        err.contains(
            "line 3: retention.max_rums: unknown key 'max_rums' (did you mean 'max_runs'?)"
        ),
        "{err}"
    );
    // The worker refuses to start on it.
    let err = db.fails(&["worker"]);
    assert!(err.contains("retention.finished_days"), "{err}");
}

#[test]
fn the_disk_guard_warns_once_and_shows_in_status_and_the_api() {
    // A threshold above any real free space: a petabyte.
    let (db, clock) = setup("ret-disk", "[retention]\ndisk_free_min_mb = 1000000000\n");
    let mut cmd = db.cmd();
    clock.apply(&mut cmd);
    cmd.env("JOBMGR_HOUSEKEEPING_MS", "100");
    let serve = db.spawn_server(
        {
            cmd.args(["serve", "--bind", "127.0.0.1:0"]);
            cmd
        },
        db.dir.join("serve.log"),
    );
    wait_for("the disk guard's report", Duration::from_secs(60), || {
        db.scalar("SELECT count(*) FROM Housekeeping WHERE name = 'disk'") == "1"
    });
    let status = serve.api.ok("/api/worker");
    let disk = &status["housekeeping"]["disk"];
    assert_eq!(disk["low"], true, "{status}");
    assert_eq!(
        disk["thresholdBytes"],
        1_000_000_000u64 * 1024 * 1024,
        "{status}"
    );
    assert_eq!(disk["worker"]["low"], true, "{status}");
    let text = db.ok(&["status"]);
    assert!(text.contains("WARNING: disk low"), "{text}");
    // Many ticks later, still one warning: once per crossing.
    let seen = db.scalar("SELECT updatedAt FROM Housekeeping WHERE name = 'retention'");
    clock.advance(2 * 3_600_000);
    wait_for("retention's next run", Duration::from_secs(60), || {
        db.scalar("SELECT updatedAt FROM Housekeeping WHERE name = 'retention'") != seen
    });
    let log = serve.log_text();
    assert_eq!(log.matches("disk: only").count(), 1, "{log}");
}

#[test]
fn max_database_mb_removes_the_oldest_runs_until_the_data_fits() {
    let (db, clock) = setup("ret-mb", "[retention]\nmax_database_mb = 2\n");
    let ids: Vec<i64> = (0..30)
        .map(|i| insert_run(&db, "COMPLETED", Some(29 - i), 400))
        .collect();
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);
    let removed = report["byMaxDatabase"].as_u64().unwrap_or(0);
    assert!((1..30).contains(&removed), "{report}");
    // Oldest first: exactly the first `removed` runs are gone.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(exists(&db, *id), i as u64 >= removed, "run #{i}: {report}");
    }
    let used: i64 = db
        .scalar("SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size")
        .parse()
        .expect("bytes");
    assert!(used <= 2 * 1024 * 1024, "{used} bytes used: {report}");
}

#[test]
fn a_stopping_worker_ends_retention_between_two_transactions() {
    let (db, clock) = setup("ret-stop", "");
    let c = db.conn();
    c.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO JobRun (jobName, status, createdAt, finishedAt, updatedAt)
         SELECT 'demo-known-total', 'COMPLETED', '{t}', '{t}', '{t}' FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO JobLog (jobRunId, level, message, timestamp)
         SELECT r.id, 'info', 'line', '{t}' FROM JobRun r, n;
         COMMIT;",
        t = timestamp_text(START_MS - 90 * DAY_MS)
    ))
    .expect("insert old runs");
    let total: i64 = db
        .scalar("SELECT count(*) FROM JobLog")
        .parse()
        .expect("count");
    let mut worker = start_worker(&db, &clock);
    wait_for("retention to have begun", Duration::from_secs(60), || {
        db.scalar("SELECT count(*) FROM JobLog")
            .parse::<i64>()
            .unwrap_or(total)
            < total
    });
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(20)), Some(0));
    let report: Value = serde_json::from_str(
        &db.scalar("SELECT report FROM Housekeeping WHERE name = 'retention'"),
    )
    .expect("a stored report");
    assert_eq!(report["stopped"], "the worker is stopping", "{report}");
    let left: i64 = db
        .scalar("SELECT count(*) FROM JobRun")
        .parse()
        .expect("count");
    assert!(left > 0, "the pass should have been cut short: {report}");
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
}

#[test]
fn an_older_file_without_incremental_vacuum_is_pruned_and_says_it_does_not_shrink() {
    let db = TestDb::new("ret-none");
    let clock = DrivenClock::new(&db, START_MS);
    // A file that existed before jobmgr chose the vacuum mode: it has a
    // table already, so the mode stays SQLite's default (none).
    rusqlite::Connection::open(&db.path)
        .and_then(|c| c.execute_batch("CREATE TABLE Older (x)"))
        .expect("make an older file");
    db.ok(&["migrate"]);
    assert_eq!(db.scalar("PRAGMA auto_vacuum"), "0");
    let old = insert_run(&db, "COMPLETED", Some(60), 200);
    let worker = start_worker(&db, &clock);
    let report = wait_for_retention(&db, &clock, &worker);
    assert!(!exists(&db, old), "{report}");
    assert_eq!(report["autoVacuum"], "none");
    assert_eq!(report["pagesReturned"], 0);
    let text = db.ok(&["status"]);
    assert!(
        text.contains("the file's auto_vacuum is none: freed space is reused"),
        "{text}"
    );
}
