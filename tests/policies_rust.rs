//! Run policies on a Rust job type (the built-in `demo-flaky`), through the
//! CLI, the worker and the SQLite file: a job that ignores its timeout is
//! recorded as timed out once it returns; `JobError::Retry` is tried again
//! after its backoff on the clock the test drives, each attempt with its
//! error and its own log lines; a plain error is not, unless the type says
//! `any_error`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::clock::{DrivenClock, timestamp_text as text};
use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// 2031-05-06T07:08:09.000Z: no real timestamp is near it.
const T_MS: i64 = 1_935_817_689_000;

fn write_config(db: &TestDb, text: &str) {
    std::fs::write(db.dir.join("jobmgr.toml"), text).expect("write config");
}

fn on_clock(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> Command {
    let mut c = db.cmd();
    clock.apply(&mut c).args(args).stdin(Stdio::null());
    c
}

fn ok_on(db: &TestDb, clock: &DrivenClock, args: &[&str]) -> String {
    let out = on_clock(db, clock, args).output().expect("run jobmgr");
    assert!(
        out.status.success(),
        "jobmgr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn row(db: &TestDb, id: i64, cols: &str) -> Vec<String> {
    db.query(&format!("SELECT {cols} FROM JobRun WHERE id = {id}"))[0]
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Null => "NULL".into(),
            other => other.to_string(),
        })
        .collect()
}

fn wait_attempt(db: &TestDb, id: i64, attempt: i64) {
    wait_for(
        &format!("run {id} waiting for attempt {attempt}"),
        WAIT,
        || row(db, id, "status, attempt") == ["SCHEDULED".to_string(), attempt.to_string()],
    );
}

#[test]
fn a_rust_job_that_ignores_its_timeout_is_recorded_as_timed_out_when_it_returns() {
    let db = TestDb::new("polrs-timeout");
    write_config(&db, "[policies.demo-flaky]\ntimeout_secs = 1\n");
    let _w = db.spawn_worker(&[]);
    let started = Instant::now();
    let id = db.enqueue("demo-flaky", &["fail_attempts=0", "work_ms=4000"]);
    // Past its timeout it is asked to stop, but it does not listen: it is
    // still RUNNING until it returns on its own.
    wait_for("the run to start", WAIT, || db.status_of(id) == "RUNNING");
    db.wait_status(id, "FAILED", WAIT);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "recorded before the job returned: {:?}",
        started.elapsed()
    );
    assert_eq!(
        row(
            &db,
            id,
            "error, json_extract(errorContext, '$.timeoutSecs'), \
             json_extract(errorContext, '$.returned')"
        ),
        ["timed out after 1 s (timeout_secs)", "1", "completed"]
    );
    // It ran to its end: the line after the work was logged.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {id} AND message = 'attempt 1 succeeded'"
        )),
        "1"
    );
    let ran_ms: f64 = db
        .scalar(&format!(
            "SELECT (julianday(finishedAt) - julianday(startedAt)) * 86400000 FROM JobRun \
             WHERE id = {id}"
        ))
        .parse()
        .expect("a duration");
    assert!(ran_ms >= 3900.0, "ran {ran_ms} ms");
}

#[test]
fn a_rust_job_returning_job_error_retry_is_tried_again_after_its_backoff() {
    let db = TestDb::new("polrs-retry");
    write_config(
        &db,
        "[policies.demo-flaky.retry]\nmax_attempts = 3\nbackoff = \"exponential\"\n\
         initial_secs = 30\n",
    );
    let clock = DrivenClock::new(&db, T_MS);
    let _w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker.log");
    let id: i64 = ok_on(
        &db,
        &clock,
        &["enqueue", "demo-flaky", "-p", "fail_attempts=2"],
    )
    .parse()
    .expect("id");
    wait_attempt(&db, id, 2);
    assert_eq!(row(&db, id, "runAt"), [text(T_MS + 30_000)]);
    let shown = ok_on(&db, &clock, &["show", &id.to_string()]);
    assert!(shown.contains("Attempt 2 of 3, next in 30 s"), "{shown}");
    // The time has not come: nothing runs.
    assert_eq!(row(&db, id, "status"), ["SCHEDULED"]);
    clock.advance(30_000);
    wait_attempt(&db, id, 3);
    assert_eq!(row(&db, id, "runAt"), [text(T_MS + 90_000)]);
    clock.advance(60_000);
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(row(&db, id, "attempt, error"), ["3", "NULL"]);
    assert_eq!(
        db.query(&format!(
            "SELECT attempt, error, json_extract(errorContext, '$.attempt') FROM JobRunAttempt \
             WHERE jobRunId = {id} ORDER BY attempt"
        )),
        vec![
            vec![
                Value::from(1),
                Value::from("flaky failure on attempt 1"),
                Value::from(1)
            ],
            vec![
                Value::from(2),
                Value::from("flaky failure on attempt 2"),
                Value::from(2)
            ],
        ]
    );
    let lines = db.query(&format!(
        "SELECT attempt, message FROM JobLog WHERE jobRunId = {id} \
         AND message LIKE 'attempt % started' ORDER BY id"
    ));
    assert_eq!(
        lines,
        (1..=3)
            .map(|a| vec![Value::from(a), Value::from(format!("attempt {a} started"))])
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_plain_error_from_a_rust_job_is_retried_only_when_the_type_says_any_error() {
    let db = TestDb::new("polrs-plain");
    write_config(
        &db,
        "[policies.demo-flaky.retry]\nmax_attempts = 3\nbackoff = \"fixed\"\ninitial_secs = 30\n",
    );
    let clock = DrivenClock::new(&db, T_MS);
    let mut w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker.log");
    let plain: i64 = ok_on(
        &db,
        &clock,
        &[
            "enqueue",
            "demo-flaky",
            "-p",
            "fail_attempts=1",
            "-p",
            "retryable=false",
        ],
    )
    .parse()
    .expect("id");
    db.wait_status(plain, "FAILED", WAIT);
    assert_eq!(
        row(&db, plain, "attempt, error"),
        ["1", "flaky failure on attempt 1"]
    );

    // With any_error, the same plain error waits for its next attempt.
    w.signal("TERM");
    w.wait_exit(WAIT);
    write_config(
        &db,
        "[policies.demo-flaky.retry]\nmax_attempts = 3\nbackoff = \"fixed\"\ninitial_secs = 30\n\
         any_error = true\n",
    );
    let _w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker2.log");
    let again: i64 = ok_on(
        &db,
        &clock,
        &[
            "enqueue",
            "demo-flaky",
            "-p",
            "fail_attempts=1",
            "-p",
            "retryable=false",
        ],
    )
    .parse()
    .expect("id");
    wait_attempt(&db, again, 2);
    clock.advance(30_000);
    db.wait_status(again, "COMPLETED", WAIT);
    assert_eq!(row(&db, again, "attempt"), ["2"]);
}
