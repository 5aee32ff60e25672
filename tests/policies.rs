//! Run policies through the CLI and the SQLite file: `[policies.TYPE]` and
//! `[groups.NAME]` checked by `check-config` and shown by `job-types`, the
//! type's default priority, and retries with backoff on the clock the test
//! drives (no real waiting).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::clock::{DrivenClock, timestamp_text as text};
use common::{TestDb, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
/// 2031-05-06T07:08:09.000Z: no real timestamp is near it.
const T_MS: i64 = 1_935_817_689_000;

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

/// Waits until run `id` waits as SCHEDULED for attempt `attempt`.
fn wait_attempt(db: &TestDb, id: i64, attempt: i64) {
    wait_for(
        &format!("run {id} waiting for attempt {attempt}"),
        WAIT,
        || row(db, id, "status, attempt") == ["SCHEDULED".to_string(), attempt.to_string()],
    );
}

/// A command that fails with exit code 75 until its third start.
const FLAKY: &str = r#"
[jobs.flaky]
command = ["/bin/sh", "-c", "n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries; echo \"attempt $n says hello\"; [ $n -ge 3 ] || { echo \"boom $n\" >&2; exit 75; }"]

[jobs.doomed]
command = ["/bin/sh", "-c", "echo always >&2; exit 3"]

[policies.flaky.retry]
max_attempts = 5
backoff = "exponential"
initial_secs = 40
on_exit_codes = [75]

[policies.doomed.retry]
max_attempts = 2
backoff = "fixed"
initial_secs = 30
"#;

fn write_config(db: &TestDb, text: &str) {
    std::fs::write(db.dir.join("jobmgr.toml"), text).expect("write config");
}

const POLICIES: &str = r#"
[jobs.flaky]
command = ["/bin/sh", "-c", "exit 75"]

[groups.disk-heavy]
max_running = 1

[policies.flaky]
timeout_secs = 30
max_running = 2
group = "disk-heavy"
priority = 5

[policies.flaky.retry]
max_attempts = 5
backoff = "exponential"
initial_secs = 10
max_secs = 3600
on_exit_codes = [75]
"#;

#[test]
fn policies_are_checked_shown_and_give_the_default_priority() {
    let db = TestDb::new("pol-config");
    write_config(&db, POLICIES);
    let out = db.ok(&["check-config"]);
    assert!(out.contains("flaky"), "{out}");
    let text = db.ok(&["job-types"]);
    assert!(
        text.contains(
            "policy: timeout 30 s, at most 2 running, group disk-heavy, priority 5, \
             5 attempts, backoff 10 s doubling up to 3600 s"
        ),
        "{text}"
    );
    let json: Value = serde_json::from_str(&db.ok(&["--json", "job-types"])).expect("json");
    let flaky = json
        .as_array()
        .expect("an array")
        .iter()
        .find(|t| t["name"] == "flaky")
        .expect("flaky listed");
    assert_eq!(flaky["policy"]["maxRunning"], 2, "{flaky}");
    assert_eq!(flaky["policy"]["retry"]["onExitCodes"][0], 75, "{flaky}");
    let id = db.enqueue("flaky", &[]);
    assert_eq!(
        db.scalar(&format!("SELECT priority FROM JobRun WHERE id = {id}")),
        "5"
    );
    let id = db.ok(&["enqueue", "flaky", "--priority", "-2"]);
    assert_eq!(
        db.scalar(&format!("SELECT priority FROM JobRun WHERE id = {id}")),
        "-2"
    );
}

#[test]
fn check_config_reports_policy_problems_with_lines_and_suggestions() {
    let db = TestDb::new("pol-bad");
    write_config(
        &db,
        "[groups.disk]\nmax_running = 1\n\n[policies.demo-known-totl]\nmax_running = 1\n\n\
         [policies.prune-history]\ngroup = \"dsik\"\ntimeout_secs = 0\n\n\
         [policies.prune-history.retry]\nbackof = \"fixed\"\n",
    );
    let out = db.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 4: policies.demo-known-totl: 'demo-known-totl' is not a job type (did you mean 'demo-known-total'?)",
        "line 8: policies.prune-history.group: group 'dsik' is not declared in [groups] (did you mean 'disk'?)",
        "line 9: policies.prune-history.timeout_secs: must be a whole number of at least 1, got 0",
        "line 12: policies.prune-history.retry.backof: unknown key 'backof' (did you mean 'backoff'?)",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("has 4 problem(s):"), "{err}");
    // The worker refuses such a file, like any invalid one.
    let out = db.run(&["enqueue", "prune-history"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn a_command_that_fails_twice_then_succeeds_completes_on_attempt_three() {
    let db = TestDb::new("pol-retry");
    write_config(&db, FLAKY);
    let clock = DrivenClock::new(&db, T_MS);
    let _w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker.log");
    let id: i64 = ok_on(&db, &clock, &["enqueue", "flaky"])
        .parse()
        .expect("id");
    wait_attempt(&db, id, 2);
    assert_eq!(row(&db, id, "runAt"), [text(T_MS + 40_000)]);
    let shown = ok_on(&db, &clock, &["show", &id.to_string()]);
    assert!(shown.contains("Attempt 2 of 5, next in 40 s"), "{shown}");
    assert!(
        shown.contains("1: "),
        "the first attempt is listed: {shown}"
    );
    // The time has not come: nothing runs.
    assert_eq!(row(&db, id, "status"), ["SCHEDULED"]);
    clock.advance(40_000);
    wait_attempt(&db, id, 3);
    // Exponential: 40 s, then 80 s.
    assert_eq!(row(&db, id, "runAt"), [text(T_MS + 120_000)]);
    clock.advance(80_000);
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(row(&db, id, "attempt, error"), ["3", "NULL"]);

    let show: Value =
        serde_json::from_str(&ok_on(&db, &clock, &["--json", "show", &id.to_string()]))
            .expect("show --json");
    let attempts = show["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{show}");
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i as i64 + 1);
        assert_eq!(
            a["error"],
            format!("exited with code 75\nboom {}", i + 1),
            "{a}"
        );
        assert_eq!(a["errorContext"]["exitCode"], 75, "{a}");
        assert!(
            a["startedAt"].is_string() && a["finishedAt"].is_string(),
            "{a}"
        );
    }
    assert_eq!(attempts[0]["retryAt"], text(T_MS + 40_000));
    // Each attempt's own log lines.
    let lines = db.query(&format!(
        "SELECT attempt, count(*) FROM JobLog WHERE jobRunId = {id} \
         AND message LIKE 'attempt % says hello' GROUP BY attempt ORDER BY attempt"
    ));
    assert_eq!(
        lines,
        vec![
            vec![Value::from(1), Value::from(1)],
            vec![Value::from(2), Value::from(1)],
            vec![Value::from(3), Value::from(1)]
        ]
    );
    let logs = ok_on(&db, &clock, &["logs", &id.to_string()]);
    assert!(logs.contains("(attempt 2)"), "{logs}");
    let counted = db.scalar("SELECT n FROM JobRunCount WHERE status = 'SCHEDULED'");
    assert_eq!(counted, "0", "the SCHEDULED counter is back to 0");
    // jobmgr_retries_total's rollup, counted by the worker's writer.
    assert_eq!(
        db.scalar("SELECT n FROM RetryStat WHERE jobName = 'flaky'"),
        "2"
    );
}

#[test]
fn a_run_that_always_fails_gives_up_after_its_last_attempt() {
    let db = TestDb::new("pol-giveup");
    write_config(&db, FLAKY);
    let clock = DrivenClock::new(&db, T_MS);
    let _w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker.log");
    let id: i64 = ok_on(&db, &clock, &["enqueue", "doomed"])
        .parse()
        .expect("id");
    wait_attempt(&db, id, 2);
    assert_eq!(row(&db, id, "runAt"), [text(T_MS + 30_000)]);
    clock.advance(30_000);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(
        row(&db, id, "attempt, error"),
        ["2", "gave up after 2 attempts: exited with code 3\nalways"]
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobRunAttempt WHERE jobRunId = {id}"
        )),
        "1"
    );
}

#[test]
fn a_waiting_run_can_be_retried_now_or_given_up_audited() {
    let db = TestDb::new("pol-actions");
    write_config(&db, FLAKY);
    let clock = DrivenClock::new(&db, T_MS);
    let _w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker.log");
    let first: i64 = ok_on(&db, &clock, &["enqueue", "doomed"])
        .parse()
        .expect("id");
    let second: i64 = ok_on(&db, &clock, &["enqueue", "doomed"])
        .parse()
        .expect("id");
    wait_attempt(&db, first, 2);
    wait_attempt(&db, second, 2);
    // Retry now: attempt 2 runs at once, with the clock standing still.
    let out = ok_on(&db, &clock, &["retry-now", &first.to_string()]);
    assert_eq!(out, format!("run {first}: attempt 2 is due now"));
    db.wait_status(first, "FAILED", WAIT);
    assert_eq!(
        row(&db, first, "error"),
        ["gave up after 2 attempts: exited with code 3\nalways"]
    );
    let out = ok_on(&db, &clock, &["give-up", &second.to_string()]);
    assert_eq!(
        out,
        format!("run {second} failed: gave up by hand after 1 attempt: exited with code 3\nalways")
    );
    assert_eq!(row(&db, second, "status"), ["FAILED"]);
    // Neither acts on a run that is not waiting: a clear error, exit 1.
    let out = on_clock(&db, &clock, &["give-up", &second.to_string()])
        .output()
        .expect("run jobmgr");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is FAILED and not waiting for a retry"),
        "{err}"
    );
    let audit = db.query(
        "SELECT action, target FROM Audit WHERE action IN ('run.retry-now', 'run.give-up') ORDER BY id",
    );
    assert_eq!(
        audit,
        vec![
            vec![
                Value::from("run.retry-now"),
                Value::from(format!("run {first}"))
            ],
            vec![
                Value::from("run.give-up"),
                Value::from(format!("run {second}"))
            ],
        ]
    );
}

#[test]
fn a_lost_workers_run_follows_its_types_retry_policy() {
    let db = TestDb::new("pol-lost");
    write_config(
        &db,
        "[policies.demo-multi-phase.retry]\nmax_attempts = 3\nbackoff = \"fixed\"\ninitial_secs = 60\n",
    );
    let clock = DrivenClock::new(&db, T_MS);
    ok_on(&db, &clock, &["migrate"]);
    let retried = db.insert_stalled_run();
    let c = db.conn();
    c.execute(
        "INSERT INTO JobRun (jobName, status, attempt, createdAt, startedAt, workerId, updatedAt) \
         SELECT jobName, status, 3, createdAt, startedAt, workerId, updatedAt FROM JobRun",
        [],
    )
    .expect("a second run, on its last attempt");
    let spent = c.last_insert_rowid();
    ok_on(&db, &clock, &["cleanup-stalled"]);
    assert_eq!(
        row(&db, retried, "status, attempt, runAt"),
        ["SCHEDULED", "2", &text(T_MS + 60_000)]
    );
    let kept = db.query(&format!(
        "SELECT attempt, error FROM JobRunAttempt WHERE jobRunId = {retried}"
    ));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0][1]
            .as_str()
            .is_some_and(|e| e.starts_with("worker lost: worker ")),
        "{kept:?}"
    );
    // jobmgr_retries_total's rollup, counted by the trigger (recovery's
    // connection has them on).
    assert_eq!(
        db.scalar("SELECT n FROM RetryStat WHERE jobName = 'demo-multi-phase'"),
        "1"
    );
    let spent_row = row(&db, spent, "status, error");
    assert_eq!(spent_row[0], "FAILED");
    assert!(
        spent_row[1].starts_with("gave up after 3 attempts: worker lost: worker "),
        "{spent_row:?}"
    );
}

#[test]
fn a_rust_job_and_a_command_past_their_timeout_are_stopped_and_recorded() {
    let db = TestDb::new("pol-timeout");
    write_config(
        &db,
        "[jobs.stubborn]\ncommand = [\"/bin/sh\", \"-c\", \"trap '' TERM; echo started; sleep 60\"]\n\
         grace_secs = 1\n\n\
         [policies.stubborn]\ntimeout_secs = 1\n\n\
         [policies.demo-known-total]\ntimeout_secs = 1\n",
    );
    let _w = db.spawn_worker(&[]);
    let started = std::time::Instant::now();
    let rust = db.enqueue("demo-known-total", &["count=1000", "delay_ms=50"]);
    let command = db.enqueue("stubborn", &[]);
    db.wait_status(rust, "FAILED", WAIT);
    db.wait_status(command, "FAILED", WAIT);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "both stopped long before they would have ended: {:?}",
        started.elapsed()
    );
    for id in [rust, command] {
        let r = row(
            &db,
            id,
            "error, json_extract(errorContext, '$.timeoutSecs')",
        );
        assert_eq!(r, ["timed out after 1 s (timeout_secs)", "1"], "run {id}");
    }
    // The Rust job saw the timeout as a cancel and stopped part way.
    let done: i64 = db
        .scalar(&format!(
            "SELECT entitiesProcessed FROM JobRun WHERE id = {rust}"
        ))
        .parse()
        .expect("a count");
    assert!(done < 1000, "stopped part way: {done}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT json_extract(errorContext, '$.returned') FROM JobRun WHERE id = {rust}"
        )),
        "stopped"
    );
}

#[test]
fn kill_9_during_backoff_loses_nothing_and_runs_nothing_twice() {
    let db = TestDb::new("pol-kill");
    write_config(&db, FLAKY);
    let clock = DrivenClock::new(&db, T_MS);
    let mut w = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker-1.log");
    let id: i64 = ok_on(&db, &clock, &["enqueue", "flaky"])
        .parse()
        .expect("id");
    wait_attempt(&db, id, 2);
    w.signal("KILL");
    w.wait_exit(WAIT);
    // The run waits on in the file; a new worker takes it from there.
    assert_eq!(row(&db, id, "status, attempt"), ["SCHEDULED", "2"]);
    let _w2 = db.spawn_worker_cmd(on_clock(&db, &clock, &["worker"]), "worker-2.log");
    clock.advance(40_000);
    wait_attempt(&db, id, 3);
    clock.advance(80_000);
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(row(&db, id, "attempt"), ["3"]);
    assert_eq!(
        db.scalar(&format!(
            "SELECT group_concat(attempt) FROM JobRunAttempt WHERE jobRunId = {id}"
        )),
        "1,2",
        "each earlier attempt kept once"
    );
    // The program ran exactly three times.
    let tries = std::fs::read_to_string(db.dir.join("tries")).expect("tries file");
    assert_eq!(tries.trim(), "3");
}
