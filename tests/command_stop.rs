//! Stopping command jobs: cancel and timeout signal the whole process
//! group (SIGTERM, then SIGKILL after the grace period), endless output is
//! capped, and neither a killed worker nor a stopping worker leaves a
//! program running.

mod common;

use std::time::Duration;

use common::command::{WAIT, alive, logs, setup, sleeper, wait_pids};
use common::{TestDb, wait_for};
use serde_json::Value;

const ENDLESS: &str = r#"
import sys
i = 0
while True:
    sys.stdout.write("spam %d\n" % i)
    i += 1
"#;

#[test]
fn endless_output_is_capped_and_the_timeout_stops_it() {
    let db = TestDb::new("cmd-endless");
    setup(
        &db,
        ENDLESS,
        "[jobs.endless]\ncommand = [PY, SCRIPT]\nmax_log_lines = 100\ntimeout_secs = 1\ngrace_secs = 1\n",
    );
    let id = db.enqueue("endless", &[]);
    let _w = db.spawn_worker(&[]);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}")),
        "timed out after 1 s"
    );
    let spam = db.scalar(&format!(
        "SELECT count(*) FROM JobLog WHERE jobRunId = {id} AND message LIKE 'spam %'"
    ));
    assert_eq!(spam, "100");
    let dropped = db.scalar(&format!(
        "SELECT message FROM JobLog WHERE jobRunId = {id} AND message LIKE '% more output lines dropped %'"
    ));
    let n: u64 = dropped
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n > 0, "dropped lines are counted: {dropped:?}");
}

#[test]
fn cancel_kills_the_whole_process_group() {
    let db = TestDb::new("cmd-cancel");
    setup(
        &db,
        &sleeper(false),
        "[jobs.sleepy]\ncommand = [PY, SCRIPT, OUTDIR]\n",
    );
    let id = db.enqueue("sleepy", &[]);
    let _w = db.spawn_worker(&[]);
    let pids = wait_pids(&db);
    db.ok(&["cancel", &id.to_string()]);
    db.wait_status(id, "CANCELLED", WAIT);
    wait_for("program and grandchild to be gone", WAIT, || {
        !pids.iter().any(|p| alive(*p))
    });
    let lines = logs(&db, id);
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m.starts_with("cancel requested: sending SIGTERM")),
        "{lines:#?}"
    );
}

#[test]
fn timeout_escalates_to_sigkill_for_a_program_ignoring_sigterm() {
    let db = TestDb::new("cmd-timeout");
    setup(
        &db,
        &sleeper(true),
        "[jobs.stubborn]\ncommand = [PY, SCRIPT, OUTDIR]\ntimeout_secs = 2\ngrace_secs = 1\n",
    );
    let id = db.enqueue("stubborn", &[]);
    let _w = db.spawn_worker(&[]);
    let pids = wait_pids(&db);
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(
        db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}")),
        "timed out after 2 s"
    );
    let ctx: Value = serde_json::from_str(
        &db.scalar(&format!("SELECT errorContext FROM JobRun WHERE id = {id}")),
    )
    .expect("errorContext");
    assert_eq!(ctx["timeoutSecs"], 2);
    wait_for("program and grandchild to be gone", WAIT, || {
        !pids.iter().any(|p| alive(*p))
    });
    let lines = logs(&db, id);
    assert!(
        lines
            .iter()
            .any(|(_, _, m)| m == "grace period over: sending SIGKILL to the process group"),
        "{lines:#?}"
    );
}

#[test]
fn a_killed_worker_leaves_no_orphan_once_the_next_worker_starts() {
    let db = TestDb::new("cmd-orphan");
    setup(
        &db,
        &sleeper(false),
        "[jobs.sleepy]\ncommand = [PY, SCRIPT, OUTDIR]\n",
    );
    let id = db.enqueue("sleepy", &[]);
    let mut first = db.spawn_worker(&[]);
    let pids = wait_pids(&db);
    wait_for("the process group to be recorded", WAIT, || {
        db.scalar(&format!(
            "SELECT json_extract(metadata, '$.pgid') FROM JobRun WHERE id = {id}"
        )) == pids[0].to_string()
    });
    first.signal("KILL");
    first.wait_exit(WAIT);
    assert!(
        pids.iter().all(|p| alive(*p)),
        "the program outlives its worker"
    );
    let _second = db.spawn_worker(&[]);
    db.wait_status(id, "FAILED", WAIT);
    let error = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"));
    assert!(error.starts_with("worker lost"), "{error}");
    wait_for("program and grandchild to be gone", WAIT, || {
        !pids.iter().any(|p| alive(*p))
    });
}

#[test]
fn a_stopping_worker_kills_a_program_that_ignores_sigterm() {
    let db = TestDb::new("cmd-abandon");
    // A grace period longer than the worker's own cancel grace: the worker
    // gives up on the run first and must still not leave the program.
    setup(
        &db,
        &sleeper(true),
        "[jobs.stubborn]\ncommand = [PY, SCRIPT, OUTDIR]\ngrace_secs = 600\n",
    );
    let id = db.enqueue("stubborn", &[]);
    let mut w = db.spawn_worker(&["--drain-timeout", "0"]);
    let pids = wait_pids(&db);
    w.signal("TERM");
    w.wait_exit(WAIT);
    assert_eq!(db.status_of(id), "CANCELLED");
    wait_for(
        "program and grandchild to be gone",
        Duration::from_secs(5),
        || !pids.iter().any(|p| alive(*p)),
    );
}
