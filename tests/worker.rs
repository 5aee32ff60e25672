//! The worker process: running jobs to every outcome, cancellation, the
//! singleton guarantee, graceful stop, kill -9 recovery, stale workers and
//! fencing, all observed through the CLI and the database file.

mod common;

use std::time::Duration;

use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn json_col(db: &TestDb, col: &str, id: i64) -> Value {
    serde_json::from_str(&db.scalar(&format!("SELECT {col} FROM JobRun WHERE id = {id}")))
        .unwrap_or(Value::Null)
}

#[test]
fn runs_a_job_to_completion_with_progress_outcome_and_logs() {
    let db = TestDb::new("complete");
    let id = db.enqueue("demo-known-total", &["count=20", "delay_ms=5"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "COMPLETED", WAIT);
    let r = &db.query(&format!(
        "SELECT entitiesProcessed, entitiesTotal, entitiesUnit, currentStage, startedAt, \
         finishedAt, workerId, metadata FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(r[0], 20);
    assert_eq!(r[1], 20);
    assert_eq!(r[2], "items");
    assert_eq!(r[3], "Processing");
    assert!(r[4].as_str().unwrap() <= r[5].as_str().unwrap());
    assert_eq!(
        json_col(&db, "outcomeSummary", id),
        serde_json::json!({"updates": 20})
    );
    let worker_id = r[6].as_i64().unwrap();
    let w = &db.query(&format!(
        "SELECT state, hostname, pid, version FROM Worker WHERE id = {worker_id}"
    ))[0];
    assert_eq!(w[0], "RUNNING");
    assert!(!w[1].as_str().unwrap().is_empty());
    assert!(w[2].as_i64().unwrap() > 0);
    assert!(
        !w[3].as_str().unwrap().is_empty(),
        "the worker records its version"
    );
    let shown = db.ok(&["show", &id.to_string()]);
    let version = w[3].as_str().unwrap();
    assert!(
        shown.contains(&format!("version {version}")),
        "show names the worker's version: {shown}"
    );
    let logs = db.ok(&["logs", &id.to_string()]);
    assert!(logs.contains("Stage: Processing"), "{logs}");
    assert!(logs.contains("done: 20 items processed"), "{logs}");
    let warn_only = db.ok(&["logs", &id.to_string(), "--level", "warning"]);
    assert!(warn_only.is_empty(), "{warn_only}");
}

#[test]
fn failures_and_panics_record_error_context_and_summary() {
    let db = TestDb::new("fail");
    let failing = db.enqueue("demo-multi-phase", &["count=10", "delay_ms=1", "fail_at=7"]);
    let panicking = db.enqueue(
        "demo-multi-phase",
        &["count=10", "delay_ms=1", "fail_at=3", "fail_mode=panic"],
    );
    let _w = db.spawn_worker(&[]);
    db.wait_status(failing, "FAILED", WAIT);
    db.wait_status(panicking, "FAILED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {failing}")),
        "record 7 could not be processed (fail_at=7)"
    );
    assert_eq!(
        json_col(&db, "errorContext", failing),
        serde_json::json!({"record": 7, "phase": "Processing"})
    );
    // The summary is written even though the job failed: 6 records done.
    let s = json_col(&db, "outcomeSummary", failing);
    assert_eq!(s["errors"], 1);
    assert_eq!(
        s["inserts"].as_i64().unwrap() + s["updates"].as_i64().unwrap(),
        6
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT entitiesProcessed FROM JobRun WHERE id = {failing}"
        )),
        "6"
    );

    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {panicking}")),
        "panicked: demo panic at record 3"
    );
    assert_eq!(json_col(&db, "outcomeSummary", panicking)["errors"], 1);
    let logs = db.ok(&["logs", &panicking.to_string(), "--level", "error"]);
    assert!(
        logs.contains("job panicked: demo panic at record 3"),
        "{logs}"
    );
    // A returned error is in the log as an error line too, with its context.
    let logs = db.ok(&["logs", &failing.to_string(), "--level", "error"]);
    assert!(
        logs.contains("failed: record 7 could not be processed (fail_at=7)"),
        "{logs}"
    );
    let context = db.scalar(&format!(
        "SELECT context FROM JobLog WHERE jobRunId = {failing} AND level = 'error' \
         AND message LIKE 'failed: %'"
    ));
    let context: serde_json::Value = serde_json::from_str(&context).unwrap();
    assert_eq!(
        context,
        serde_json::json!({"event": "failed", "errorContext": {"record": 7, "phase": "Processing"}})
    );
}

#[test]
fn cancelling_a_running_job_ends_it_cancelled() {
    let db = TestDb::new("cancelrun");
    let id = db.enqueue("demo-known-total", &["count=100000", "delay_ms=20"]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "RUNNING", WAIT);
    wait_for("some progress", WAIT, || {
        db.scalar(&format!(
            "SELECT entitiesProcessed FROM JobRun WHERE id = {id}"
        )) != "0"
    });
    let out = db.ok(&["cancel", &id.to_string()]);
    assert_eq!(
        out,
        format!("run {id} is running; the worker was asked to cancel it")
    );
    db.wait_status(id, "CANCELLED", WAIT);
    let r = &db.query(&format!(
        "SELECT error, cancelRequestedAt, finishedAt, entitiesProcessed FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(r[0], "cancelled while running");
    assert!(r[1].is_string() && r[2].is_string());
    assert!(r[3].as_i64().unwrap() > 0);
}

#[test]
fn only_one_of_many_simultaneous_workers_wins() {
    let db = TestDb::new("singleton");
    db.ok(&["migrate"]);
    let mut workers: Vec<_> = (0..6).map(|_| db.spawn_worker(&[])).collect();
    let mut exited = Vec::new();
    wait_for("five workers to give up", WAIT, || {
        for (i, w) in workers.iter_mut().enumerate() {
            if !exited.iter().any(|(j, _)| *j == i)
                && let Ok(Some(s)) = w.child.try_wait()
            {
                exited.push((i, s));
            }
        }
        exited.len() >= 5
    });
    assert_eq!(exited.len(), 5);
    for (i, status) in &exited {
        assert!(!status.success(), "worker {i} exited 0");
        let log = workers[*i].log_text();
        assert!(log.contains("jobmgr: another worker is"), "{log}");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM Worker WHERE state IN ('STARTING', 'RUNNING', 'STOPPING')"),
        "1"
    );
    // The message names the running worker once it is registered.
    wait_for("the winner to be RUNNING", WAIT, || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    let mut late = db.spawn_worker(&[]);
    assert_ne!(late.wait_exit(WAIT), Some(0));
    let pid = db.scalar("SELECT pid FROM Worker WHERE state = 'RUNNING'");
    let log = late.log_text();
    assert!(
        log.contains("another worker is already running: worker")
            && log.contains(&format!("pid {pid} on")),
        "{log}"
    );
    assert!(log.contains("heartbeat"), "{log}");
}

#[test]
fn graceful_stop_drains_running_jobs_then_exits_zero() {
    let db = TestDb::new("drain");
    let id = db.enqueue("demo-known-total", &["count=15", "delay_ms=100"]);
    let queued = db.enqueue("demo-known-total", &["count=1"]);
    let mut w = db.spawn_worker(&["--concurrency", "1"]);
    db.wait_status(id, "RUNNING", WAIT);
    w.signal("TERM");
    wait_for("STOPPING", WAIT, || {
        db.scalar("SELECT state FROM Worker ORDER BY id DESC LIMIT 1") == "STOPPING"
    });
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.log_text());
    assert_eq!(db.status_of(id), "COMPLETED");
    assert_eq!(
        db.status_of(queued),
        "QUEUED",
        "nothing new is claimed while stopping"
    );
    let row =
        &db.query("SELECT state, stoppingAt, stoppedAt FROM Worker ORDER BY id DESC LIMIT 1")[0];
    assert_eq!(row[0], "STOPPED");
    assert!(row[1].is_string() && row[2].is_string());
}

#[test]
fn stop_request_in_the_database_and_drain_timeout_interrupt_jobs() {
    let db = TestDb::new("stopdb");
    let long = db.enqueue("demo-multi-phase", &["count=100000", "delay_ms=50"]);
    let retry_safe = db.enqueue("demo-known-total", &["count=100000", "delay_ms=50"]);
    let mut w = db.spawn_worker(&["--drain-timeout", "0.5"]);
    db.wait_status(long, "RUNNING", WAIT);
    db.wait_status(retry_safe, "RUNNING", WAIT);
    let msg = db.ok(&["worker", "stop"]);
    assert!(msg.starts_with("stop requested for worker"), "{msg}");
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.log_text());
    assert_eq!(db.status_of(long), "CANCELLED");
    let err = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {long}"));
    assert!(err.starts_with("interrupted: worker stopped"), "{err}");
    // A retry-safe job goes back to the queue as a new attempt.
    assert_eq!(db.status_of(retry_safe), "QUEUED");
    assert_eq!(
        db.scalar(&format!(
            "SELECT attempt FROM JobRun WHERE id = {retry_safe}"
        )),
        "2"
    );
    let err = db.fails(&["worker", "stop"]);
    assert_eq!(err.trim(), "jobmgr: no worker is running");
}

#[test]
fn kill_9_mid_job_loses_nothing_committed_and_the_next_worker_recovers() {
    let db = TestDb::new("kill9");
    let done = db.enqueue("demo-known-total", &["count=3", "delay_ms=1"]);
    let unsafe_run = db.enqueue("demo-multi-phase", &["count=100000", "delay_ms=20"]);
    let safe_run = db.enqueue("demo-known-total", &["count=30", "delay_ms=100"]);
    let mut w = db.spawn_worker(&[]);
    db.wait_status(done, "COMPLETED", WAIT);
    db.wait_status(unsafe_run, "RUNNING", WAIT);
    db.wait_status(safe_run, "RUNNING", WAIT);
    wait_for("logs to be committed", WAIT, || {
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {unsafe_run}"
        ))
        .parse::<i64>()
        .unwrap_or(0)
            >= 1
    });
    let logs_before: i64 = db
        .scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {unsafe_run}"
        ))
        .parse()
        .unwrap();
    let done_logs = db.scalar(&format!(
        "SELECT count(*) FROM JobLog WHERE jobRunId = {done}"
    ));
    w.signal("KILL");
    w.wait_exit(WAIT);

    let mut w2 = db.spawn_worker(&[]);
    db.wait_status(unsafe_run, "FAILED", WAIT);
    let err = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {unsafe_run}"));
    assert!(err.starts_with("worker lost: worker 1 (pid"), "{err}");
    assert!(err.contains("exited without finishing the run"), "{err}");
    // The retry-safe run was re-queued and the new worker completed it.
    db.wait_status(safe_run, "COMPLETED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT attempt FROM JobRun WHERE id = {safe_run}")),
        "2"
    );
    // What was committed before the kill is all still there.
    assert_eq!(db.status_of(done), "COMPLETED");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {done}"
        )),
        done_logs
    );
    let logs_after: i64 = db
        .scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {unsafe_run}"
        ))
        .parse()
        .unwrap();
    assert!(logs_after >= logs_before);
    assert_eq!(db.scalar("SELECT state FROM Worker WHERE id = 1"), "DEAD");
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    // The per-status counters the statistics read agree with the rows.
    let drift = db.scalar(
        "SELECT count(*) FROM JobRunCount c WHERE c.n <> \
         (SELECT count(*) FROM JobRun r WHERE c.status IN ('ALL', r.status))",
    );
    assert_eq!(drift, "0");
    assert_eq!(db.scalar("SELECT count(*) FROM JobRunCount"), "6");
    w2.signal("TERM");
    assert_eq!(w2.wait_exit(WAIT), Some(0));
}

#[test]
fn a_silent_worker_goes_stale_and_cleanup_fails_its_runs() {
    let db = TestDb::new("stale");
    let id = db.enqueue("demo-multi-phase", &["count=100000", "delay_ms=20"]);
    let mut w = db.spawn_worker(&[]);
    db.wait_status(id, "RUNNING", WAIT);
    // Heartbeats advance while it lives.
    let hb = db.scalar("SELECT heartbeatAt FROM Worker");
    wait_for("a newer heartbeat", WAIT, || {
        db.scalar("SELECT heartbeatAt FROM Worker") > hb
    });
    w.signal("KILL");
    w.wait_exit(WAIT);
    assert_eq!(
        db.ok(&["cleanup-stalled"]),
        "no stalled runs",
        "not stale yet (1.5 s)"
    );
    wait_for("status to show STALE", WAIT, || {
        db.ok(&["status"]).starts_with("worker: STALE")
    });
    let out = db.ok(&["cleanup-stalled"]);
    assert!(
        out.contains("worker 1 (pid") && out.contains("declared dead"),
        "{out}"
    );
    assert_eq!(db.status_of(id), "FAILED");
    let err = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"));
    assert!(
        err.starts_with("worker lost: worker 1") && err.contains("stopped heartbeating"),
        "{err}"
    );
    assert_eq!(db.scalar("SELECT state FROM Worker"), "DEAD");
}

#[test]
fn a_worker_declared_dead_cannot_overwrite_what_happened_since() {
    let db = TestDb::new("fence");
    let id = db.enqueue("demo-known-total", &["count=100000", "delay_ms=10"]);
    let mut w = db.spawn_worker(&[]);
    db.wait_status(id, "RUNNING", WAIT);
    // Another process declares the worker dead and resolves its run.
    db.conn()
        .execute_batch(&format!(
            "BEGIN IMMEDIATE; UPDATE Worker SET state = 'DEAD'; \
             UPDATE JobRun SET status = 'FAILED', error = 'resolved elsewhere', \
             entitiesProcessed = -1 WHERE id = {id}; COMMIT;"
        ))
        .unwrap();
    let code = w.wait_exit(WAIT);
    assert_ne!(code, Some(0));
    assert!(
        w.log_text()
            .contains("was declared dead by another process"),
        "{}",
        w.log_text()
    );
    let r = &db.query(&format!(
        "SELECT status, error, entitiesProcessed FROM JobRun WHERE id = {id}"
    ))[0];
    assert_eq!(r[0], "FAILED");
    assert_eq!(r[1], "resolved elsewhere");
    assert_eq!(r[2], -1);
}

#[test]
fn priority_orders_the_queue() {
    let db = TestDb::new("priority");
    let low = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    let high: i64 = db
        .ok(&[
            "enqueue",
            "demo-known-total",
            "-p",
            "count=1",
            "--priority",
            "10",
        ])
        .parse()
        .unwrap();
    let _w = db.spawn_worker(&["--concurrency", "1"]);
    db.wait_status(low, "COMPLETED", WAIT);
    let started = |id: i64| db.scalar(&format!("SELECT startedAt FROM JobRun WHERE id = {id}"));
    assert!(
        started(high) <= started(low),
        "{} vs {}",
        started(high),
        started(low)
    );
}

/// The worker's writer and the enqueue path keep the statistics' counters
/// themselves (their connections run without triggers); everything else
/// relies on the triggers. Either way the counters must match the rows.
#[test]
fn the_run_counters_agree_with_the_rows_after_every_kind_of_change() {
    let db = TestDb::new("counters");
    let done = db.enqueue("demo-known-total", &["count=3", "delay_ms=1"]);
    let failed = db.enqueue("demo-multi-phase", &["count=5", "delay_ms=1", "fail_at=2"]);
    let panicked = db.enqueue(
        "demo-multi-phase",
        &["count=5", "delay_ms=1", "fail_at=2", "fail_mode=panic"],
    );
    let long = db.enqueue("demo-known-total", &["count=100000", "delay_ms=20"]);
    let never = db.enqueue("demo-known-total", &["count=3"]);
    db.ok(&["cancel", &never.to_string()]);
    // A run inserted by hand, as a user's sqlite3 would.
    let c = db.conn();
    c.execute(
        "INSERT INTO JobRun (jobName, status, parameters, createdAt, updatedAt) \
         VALUES ('demo-known-total', 'QUEUED', '{\"count\":2,\"delay_ms\":1}', \
         '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [],
    )
    .unwrap();
    let by_hand = c.last_insert_rowid();
    let _w = db.spawn_worker(&["--concurrency", "4"]);
    for (id, status) in [
        (done, "COMPLETED"),
        (failed, "FAILED"),
        (panicked, "FAILED"),
        (by_hand, "COMPLETED"),
    ] {
        db.wait_status(id, status, WAIT);
    }
    db.wait_status(long, "RUNNING", WAIT);
    db.ok(&["cancel", &long.to_string()]);
    db.wait_status(long, "CANCELLED", WAIT);
    // Runs enqueued while the worker is busy, finished many to a commit.
    let more: Vec<i64> = (0..20)
        .map(|_| db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]))
        .collect();
    for id in &more {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    // Runs waiting for a time: one still waiting, one cancelled while it
    // waited (the worker's bulk writer counts SCHEDULED runs by hand).
    let waiting = db.ok(&["enqueue", "demo-known-total", "--in", "1h"]);
    let dropped = db.ok(&["enqueue", "demo-known-total", "--in", "1h"]);
    db.ok(&["cancel", &dropped]);
    assert_eq!(db.status_of(waiting.parse().unwrap()), "SCHEDULED");
    let counters = db.query("SELECT status, n FROM JobRunCount ORDER BY status");
    let rows = db.query(
        "SELECT s, (SELECT count(*) FROM JobRun r WHERE s = 'ALL' OR r.status = s) FROM \
         (SELECT 'ALL' AS s UNION ALL SELECT 'CANCELLED' UNION ALL SELECT 'COMPLETED' \
          UNION ALL SELECT 'FAILED' UNION ALL SELECT 'SCHEDULED' UNION ALL SELECT 'WAITING') \
         ORDER BY s",
    );
    assert_eq!(counters, rows);
    assert_eq!(
        rows,
        db.query(
            "SELECT 'ALL', 28 UNION ALL SELECT 'CANCELLED', 3 UNION ALL SELECT 'COMPLETED', 22 \
             UNION ALL SELECT 'FAILED', 2 UNION ALL SELECT 'SCHEDULED', 1 \
             UNION ALL SELECT 'WAITING', 0"
        )
    );
}

/// The disk refuses the worker's writes for a while (here: a file-size
/// limit, like a full disk, lifted after the first refusal, as when space
/// is freed). The worker retries the refused batch instead of dying: the
/// same worker finishes every run, with all its progress and log lines.
#[test]
fn a_worker_whose_writes_are_refused_for_a_while_loses_nothing() {
    let db = TestDb::new("writeretry");
    db.ok(&["migrate"]);
    let ids: Vec<i64> = (0..4)
        .map(|_| db.enqueue("demo-known-total", &["count=100", "delay_ms=5"]))
        .collect();
    let mut w = spawn_limited_worker(&db, "worker-limited.log");
    wait_for("a refused write", WAIT, || {
        w.log_text().contains("retrying")
    });
    common::lift_file_size_limit(w.child.id());
    for id in &ids {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    wait_for("the worker to notice", WAIT, || {
        w.log_text().contains("accepts writes again")
    });
    let rows = db.query(&format!(
        "SELECT entitiesProcessed, error, (SELECT count(*) FROM JobLog l WHERE l.jobRunId = r.id) \
         FROM JobRun r WHERE id IN ({}) ORDER BY id",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    ));
    let lines = &rows[0][2];
    assert!(lines.as_i64().unwrap() > 0);
    for r in &rows {
        assert_eq!(
            (&r[0], &r[1], &r[2]),
            (&Value::from(100), &Value::Null, lines)
        );
    }
    assert_eq!(
        db.scalar("SELECT group_concat(state) FROM Worker"),
        "RUNNING"
    );
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

/// A worker whose writes the disk refuses (see `FILE_SIZE_LIMIT`), given
/// time to retry: its registration holds for a minute.
fn spawn_limited_worker(db: &TestDb, log: &str) -> common::Worker {
    let mut cmd = db.cmd_with_limits(common::FILE_SIZE_LIMIT, &["worker", "--concurrency", "4"]);
    cmd.env("JOBMGR_STALE_AFTER_MS", "60000");
    db.spawn_worker_cmd(cmd, log)
}

/// A stop requested while the disk refuses the worker's writes cannot be
/// recorded; the worker ends at once with the error instead of retrying
/// out its window, and its runs are left for recovery as any lost
/// worker's.
#[test]
fn a_stop_signal_while_writes_are_refused_ends_the_worker_at_once() {
    let db = TestDb::new("writestop");
    db.ok(&["migrate"]);
    for _ in 0..4 {
        db.enqueue("demo-known-total", &["count=100", "delay_ms=5"]);
    }
    let mut w = spawn_limited_worker(&db, "worker-stopped.log");
    wait_for("a refused write", WAIT, || {
        w.log_text().contains("retrying")
    });
    w.signal("TERM");
    let code = w.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit {code:?}; log:\n{}",
        w.log_text()
    );
    assert!(w.log_text().contains("disk I/O error"), "{}", w.log_text());
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
}

/// Starts a worker on `db` with RUST_BACKTRACE set to `backtrace` (or
/// unset), its stderr in `log`.
fn spawn_worker_backtrace(db: &TestDb, log: &str, backtrace: Option<&str>) -> common::Worker {
    let mut cmd = db.cmd();
    cmd.arg("worker");
    match backtrace {
        Some(v) => cmd.env("RUST_BACKTRACE", v),
        None => cmd.env_remove("RUST_BACKTRACE"),
    };
    db.spawn_worker_cmd(cmd, log)
}

/// A job's panic is one error line of the worker's log, without the
/// default hook's notes; the backtrace comes only when asked for.
#[test]
fn a_panic_is_one_log_line_and_a_backtrace_only_on_request() {
    for (backtrace, name) in [(None, "panic-quiet"), (Some("1"), "panic-trace")] {
        let db = TestDb::new(name);
        let id = db.enqueue(
            "demo-multi-phase",
            &["count=5", "delay_ms=0", "fail_at=2", "fail_mode=panic"],
        );
        let mut w = spawn_worker_backtrace(&db, "worker.log", backtrace);
        db.wait_status(id, "FAILED", WAIT);
        w.signal("TERM");
        assert_eq!(w.wait_exit(WAIT), Some(0));
        let log = w.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("panicked"))
            .unwrap_or_else(|| panic!("no panic line:\n{log}"));
        assert!(
            line.contains(" ERROR ")
                && line.contains("thread 'executor-")
                && line.contains("panicked at src/jobs/demo.rs:")
                && line.ends_with(": demo panic at record 2"),
            "{line}"
        );
        assert!(!log.contains("note: run with `RUST_BACKTRACE=1`"), "{log}");
        assert_eq!(
            log.contains("stack backtrace") || log.contains("std::panicking"),
            backtrace.is_some(),
            "{log}"
        );
    }
}

/// The worker's group commits skip SQLite's foreign-key checks, relying on
/// their fences: a run deleted while it runs gets no more log lines, and
/// the file never holds a row that refers to a missing one.
#[test]
fn a_run_deleted_while_it_runs_gets_no_lines_and_no_reference_dangles() {
    let db = TestDb::new("trusted-references");
    let quick: Vec<i64> = (0..3).map(|_| db.enqueue("demo-quick", &[])).collect();
    // The newest run: deleted, its id is not given to another.
    let doomed = db.enqueue("demo-known-total", &["count=200", "delay_ms=10"]);
    let w = db.spawn_worker(&[]);
    db.wait_status(doomed, "RUNNING", WAIT);
    db.conn()
        .execute_batch(&format!(
            "PRAGMA foreign_keys = ON; DELETE FROM JobRun WHERE id = {doomed}"
        ))
        .unwrap();
    wait_for("the worker to find the run gone", WAIT, || {
        w.log_text().contains("no longer owned by this worker")
    });
    let lines = |id: i64| {
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {id}"
        ))
    };
    assert_eq!(lines(doomed), "0", "lines written for the deleted run");
    for id in &quick {
        assert_eq!(db.status_of(*id), "COMPLETED");
        assert_eq!(lines(*id), "2");
    }
    let dangling = db.query("PRAGMA foreign_key_check");
    assert!(dangling.is_empty(), "{dangling:?}");
}

/// Queues `n` runs of `demo-quick` (a total, progress and two log lines
/// each) in one transaction: enough WAL for the checkpoints to matter.
fn queue_quick_runs(db: &TestDb, n: i64) {
    db.conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, updatedAt) \
             SELECT 'demo-quick', 'QUEUED', json_object('count', 1, 'delay_ms', 0), '2026-01-01T00:00:00.000Z', \
             '2026-01-01T00:00:00.000Z' FROM k",
            [n],
        )
        .expect("queue runs");
}

fn unfinished(db: &TestDb) -> i64 {
    db.scalar("SELECT count(*) FROM JobRun WHERE finishedAt IS NULL")
        .parse()
        .unwrap_or(-1)
}

#[test]
fn the_checkpointer_thread_copies_the_wal_and_a_stop_leaves_it_all_in_the_file() {
    let db = TestDb::new("checkpointer");
    db.ok(&["migrate"]);
    // About 1,800 frames of WAL: past the 1,000 that wake the checkpointer.
    queue_quick_runs(&db, 8000);
    let mut w = db.spawn_worker(&["--concurrency", "4"]);
    let pid = w.child.id();
    wait_for("the queue to drain", WAIT, || unfinished(&db) == 0);
    // The database file's pages were written by the checkpointer thread,
    // not inside the writer's commits.
    let copied = common::thread_written(pid, "checkpointer").expect("a checkpointer thread");
    assert!(
        copied >= 100 * 4096,
        "the checkpointer wrote {copied} bytes"
    );
    let (log, done) = common::wal_frames(&db.path);
    assert!(done > 0, "nothing checkpointed: {log} frames");
    assert!(log - done < 1500, "{} of {log} frames wait", log - done);

    // A connection that stays open (and has read), so that the worker is
    // not the database's last and SQLite's own checkpoint at close does
    // not run: what is in the file then is the worker's last checkpoint.
    let reader = db.conn();
    let runs: i64 = reader
        .query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
        .expect("count runs");
    assert_eq!(runs, 8000);
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
    let (log, done) = common::wal_frames(&db.path);
    assert_eq!(done, log, "the last checkpoint left frames in the WAL");
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'"),
        "8000"
    );
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    drop(reader);
}

#[test]
fn kill_9_while_the_checkpointer_copies_loses_nothing_committed() {
    let db = TestDb::new("checkpoint-kill9");
    db.ok(&["migrate"]);
    queue_quick_runs(&db, 8000);
    let mut w = db.spawn_worker(&["--concurrency", "4"]);
    let pid = w.child.id();
    // Kill as soon as the checkpointer's write count moves: it is copying
    // pages into the database file, or has just done so.
    let mut start = None;
    wait_for("the checkpointer thread", WAIT, || {
        start = common::thread_written(pid, "checkpointer");
        start.is_some() || unfinished(&db) == 0
    });
    let start = start.expect("a checkpointer thread");
    let written = || common::thread_written(pid, "checkpointer").unwrap_or(0);
    wait_for("the checkpointer to write", WAIT, || {
        written() > start || unfinished(&db) == 0
    });
    let copying = written() > start;
    let seen = committed_finishes(&db);
    w.signal("KILL");
    w.wait_exit(WAIT);
    assert!(
        copying,
        "the checkpointer wrote nothing before the queue drained"
    );
    assert!(!seen.is_empty(), "no run finished before the kill");
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    let after = committed_finishes(&db);
    for (id, status) in &seen {
        assert_eq!(
            after.get(id),
            Some(status),
            "run {id} changed after the kill"
        );
    }
    // The next worker resolves the killed one's runs and drains the rest.
    let mut w2 = db.spawn_worker(&["--concurrency", "4"]);
    wait_for("the rest to finish", WAIT, || unfinished(&db) == 0);
    w2.signal("TERM");
    assert_eq!(w2.wait_exit(WAIT), Some(0));
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "8000");
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
}

/// Every finished run's id and status, and its log lines.
fn committed_finishes(db: &TestDb) -> std::collections::HashMap<i64, String> {
    db.query(
        "SELECT r.id, r.status || ' ' || (SELECT count(*) FROM JobLog l WHERE l.jobRunId = r.id) \
         FROM JobRun r WHERE r.finishedAt IS NOT NULL",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].as_i64().unwrap_or(0),
            r[1].as_str().unwrap_or("").to_string(),
        )
    })
    .collect()
}

#[test]
fn a_stopped_workers_row_keeps_its_writers_totals() {
    let db = TestDb::new("writer-load");
    db.ok(&["migrate"]);
    queue_quick_runs(&db, 300);
    // No heartbeat within the test: whatever totals the row holds, the
    // stop wrote.
    let mut cmd = db.cmd();
    cmd.env("JOBMGR_HEARTBEAT_MS", "600000")
        .env("JOBMGR_STALE_AFTER_MS", "1200000")
        .arg("worker");
    let mut w = db.spawn_worker_cmd(cmd, "worker-load.log");
    wait_for("the runs finished", WAIT, || unfinished(&db) == 0);
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.log_text());
    let row = &db.query(
        "SELECT state, writerBusyUs, writerCommits, writerCommitUs, writerLockWaitUs, \
         writerSyncUs FROM Worker",
    )[0];
    assert_eq!(row[0], "STOPPED");
    let n = |i: usize| row[i].as_i64().unwrap_or(-1);
    let (busy, commits, commit, lock, sync) = (n(1), n(2), n(3), n(4), n(5));
    // 300 runs are at least one claim and one finish commit, and at most
    // two commits each.
    assert!((2..=600 + 10).contains(&commits), "{commits} commits");
    assert!(sync > 0 && lock >= 0 && lock + sync <= commit, "{row:?}");
    assert!(commit <= busy, "{row:?}");
}

#[test]
fn status_prints_how_hard_the_writer_worked() {
    let db = TestDb::new("writer-status");
    db.ok(&["migrate"]);
    // 100 s from the start to the stop: busy 25 s, 5,000 commits, 10 s of
    // the busy time in COMMIT.
    db.insert_worker_with_writer_load();
    let out = db.ok(&["status"]);
    assert!(
        out.contains("\n  writer busy 25 % over 1 min 40 s, 50 commits/s, sync 40 %\n"),
        "{out}"
    );
    let json: Value = serde_json::from_str(&db.ok(&["status", "--json"])).expect("JSON");
    let writer = &json["worker"]["worker"]["writer"];
    assert_eq!(writer["lockWaitUs"], 1_000_000, "{json}");
    assert_eq!(writer["commitUs"], 20_000_000, "{json}");
}
