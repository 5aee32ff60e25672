//! The test-only clocks: `serve`, `worker` and the CLI started with
//! `JOBMGR_TEST_CLOCK_OFFSET_MS` or `JOBMGR_TEST_CLOCK_FILE` stamp what they
//! write by that clock, and time-dependent behaviour (a silent worker going
//! stale) follows it without real waiting. Observed in the SQLite file.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::clock::{DrivenClock, FILE_ENV as FILE, OFFSET_ENV as OFFSET, timestamp_text as text};
use common::{TestDb, wait_for};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
/// A moment no test run is near, so a timestamp from the real clock can
/// never pass for one from the test clock.
const T: &str = "2031-05-06T07:08:09.000Z";
const T_MS: i64 = 1_935_817_689_000;

/// `jobmgr args...` on `db` with the environment variables `env`.
fn cmd(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = db.cmd();
    c.args(args).envs(env.iter().copied()).stdin(Stdio::null());
    c
}

fn run(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> Output {
    cmd(db, env, args).output().expect("run jobmgr")
}

/// Runs a command that must succeed; its trimmed stdout.
fn ok(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(db, env, args);
    assert!(
        out.status.success(),
        "jobmgr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn spawn_worker(db: &TestDb, env: &[(&str, &str)]) -> common::Worker {
    db.spawn_worker_cmd(cmd(db, env, &["worker"]), "worker-clock.log")
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn serve_and_its_worker_on_an_offset_clock_stamp_everything_by_it() {
    let db = TestDb::new("clock-offset");
    // 400 days back: far outside any real timestamp written meanwhile.
    let offset: i64 = -400 * 86_400_000;
    let env = [(OFFSET, offset.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let from = text(real_now_ms() + offset);
    let mut serve_cmd = db.cmd();
    serve_cmd.args(["serve", "--bind", "127.0.0.1:0"]);
    let serve = db.spawn_server_with_env(serve_cmd, OFFSET, &offset.to_string());
    let r = serve.api.post(
        "/api/jobs",
        &json!({"jobName": "demo-known-total", "parameters": {"count": 3, "delay_ms": 1}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let by_api = r.json()["run"]["id"].as_i64().expect("run id");
    let by_cli: i64 = ok(&db, &env, &["enqueue", "demo-known-total", "-p", "count=2"])
        .parse()
        .expect("enqueue prints the id");
    db.wait_status(by_api, "COMPLETED", WAIT);
    db.wait_status(by_cli, "COMPLETED", WAIT);
    let hb = db.scalar("SELECT heartbeatAt FROM Worker");
    wait_for("a heartbeat after the runs", WAIT, || {
        db.scalar("SELECT heartbeatAt FROM Worker") > hb
    });
    let stamps = db.query(&format!(
        "SELECT createdAt, startedAt, finishedAt, updatedAt FROM JobRun \
         WHERE id IN ({by_api}, {by_cli}) UNION ALL \
         SELECT startedAt, heartbeatAt, startedAt, heartbeatAt FROM Worker UNION ALL \
         SELECT timestamp, timestamp, timestamp, timestamp FROM JobLog"
    ));
    let to = text(real_now_ms() + offset);
    assert!(
        stamps.len() > 3,
        "runs, the worker and log lines: {stamps:?}"
    );
    for row in stamps {
        for t in row {
            let t = t.as_str().expect("a timestamp").to_string();
            assert!(
                from <= t && t <= to,
                "{t} is not by the offset clock ({from} to {to})\n{}",
                db.log_tails()
            );
        }
    }
    assert!(
        serve
            .log_text()
            .contains("test clock in use: system clock moved by"),
        "{}",
        serve.log_text()
    );
}

#[test]
fn a_worker_on_a_driven_clock_stamps_exactly_the_time_the_test_writes() {
    let db = TestDb::new("clock-driven");
    assert_eq!(text(T_MS), T);
    let clock = DrivenClock::new(&db, T_MS);
    let env = [clock.env()];
    let first: i64 = ok(&db, &env, &["enqueue", "demo-known-total", "-p", "count=3"])
        .parse()
        .expect("id");
    let _w = spawn_worker(&db, &env);
    db.wait_status(first, "COMPLETED", WAIT);
    let run = |id: i64| {
        db.query(&format!(
            "SELECT createdAt, startedAt, finishedAt, updatedAt FROM JobRun WHERE id = {id}"
        ))[0]
            .clone()
    };
    assert_eq!(run(first), vec![T, T, T, T]);
    assert_eq!(
        db.query("SELECT startedAt, heartbeatAt FROM Worker")[0],
        vec![T, T]
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM JobLog WHERE jobRunId = {first} AND timestamp <> '{T}'"
        )),
        "0"
    );
    // Moving the clock moves the worker's next heartbeat and next run.
    let later = text(T_MS + 5_000);
    clock.advance(5_000);
    wait_for("a heartbeat at the new time", WAIT, || {
        db.scalar("SELECT heartbeatAt FROM Worker") == later
    });
    let second: i64 = ok(&db, &env, &["enqueue", "demo-known-total", "-p", "count=3"])
        .parse()
        .expect("id");
    db.wait_status(second, "COMPLETED", WAIT);
    let l = later.as_str();
    assert_eq!(run(second), vec![l, l, l, l]);
    assert_eq!(run(first), vec![T, T, T, T], "the first run is unchanged");
}

#[test]
fn a_driven_clock_moved_past_stale_after_makes_a_silent_worker_stale() {
    let db = TestDb::new("clock-stale");
    let clock = DrivenClock::new(&db, T_MS);
    // A minute: far longer than this test runs by the real clock.
    let env = [clock.env(), ("JOBMGR_STALE_AFTER_MS", "60000")];
    let id: i64 = ok(
        &db,
        &env,
        &[
            "enqueue",
            "demo-multi-phase",
            "-p",
            "count=100000",
            "-p",
            "delay_ms=20",
        ],
    )
    .parse()
    .expect("id");
    let mut w = spawn_worker(&db, &env);
    db.wait_status(id, "RUNNING", WAIT);
    w.signal("KILL");
    w.wait_exit(WAIT);
    assert!(ok(&db, &env, &["status"]).starts_with("worker: RUNNING"));
    clock.set(T_MS + 59_999);
    assert_eq!(ok(&db, &env, &["cleanup-stalled"]), "no stalled runs");
    clock.advance(2);
    let status = ok(&db, &env, &["status"]);
    assert!(status.starts_with("worker: STALE"), "{status}");
    let out = ok(&db, &env, &["cleanup-stalled"]);
    assert!(out.contains("declared dead"), "{out}");
    assert_eq!(db.status_of(id), "FAILED");
    let err = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"));
    assert!(
        err.contains(&format!("stopped heartbeating (last at {T})")),
        "{err}"
    );
    assert_eq!(
        db.scalar(&format!("SELECT finishedAt FROM JobRun WHERE id = {id}")),
        text(T_MS + 60_001)
    );
    assert_eq!(db.scalar("SELECT state FROM Worker"), "DEAD");
}

#[test]
fn a_bad_test_clock_is_refused_and_help_does_not_mention_it() {
    let db = TestDb::new("clock-bad");
    // Exit 2 for an invalid setting, 1 for a file that cannot be read.
    for (env, says, code) in [
        (
            vec![(OFFSET, "5s")],
            "jobmgr: JOBMGR_TEST_CLOCK_OFFSET_MS=\"5s\": expected a whole number of milliseconds",
            2,
        ),
        (
            vec![(FILE, "/nonexistent/jobmgr-clock")],
            "jobmgr: read test clock /nonexistent/jobmgr-clock: ",
            1,
        ),
        (
            vec![(OFFSET, "1"), (FILE, "/nonexistent/jobmgr-clock")],
            "are both set: use one test clock",
            2,
        ),
    ] {
        let out = run(&db, &env, &["enqueue", "demo-known-total"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{env:?}: {stderr}");
        assert!(stderr.contains(says), "{env:?}: {stderr}");
    }
    assert!(!Path::new(&db.path).exists(), "nothing was written");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "--help"],
    ] {
        let help = ok(&db, &[], &args);
        assert!(!help.contains("CLOCK"), "{help}");
    }
}
