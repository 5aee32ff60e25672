//! Each due time is decided exactly once, whatever happens to the worker
//! or the clock: a restart in the middle of a due minute, a kill -9 after
//! the scheduler decided but before its transaction committed, a wall
//! clock that jumps forward and back.

mod common;
mod schedule_support;

use schedule_support::{Setup, WAIT, stop_worker, wait_log};

const T0: &str = "2027-01-04T00:00:00Z";
const MINUTELY: &str = "[schedules.m]\njob = \"noop\"\ncron = \"* * * * *\"\noverlap = \"allow\"\n";

#[test]
fn a_restart_in_the_middle_of_a_due_minute_neither_repeats_nor_loses_it() {
    let s = Setup::new("sched-restart", T0, MINUTELY);
    let w = s.worker("worker-1.log");
    s.wait_seen("m");
    s.at("2027-01-04T00:01:00.200Z");
    s.wait_ticks("m", 1);
    // Stopped and started again within the same minute: 00:01 stays decided.
    stop_worker(w);
    s.at("2027-01-04T00:01:30Z");
    let w = s.worker("worker-2.log");
    wait_log(&w, "scheduler: first pass done");
    // Stopped before 00:02 is decided, started 40 s after it: still on time.
    stop_worker(w);
    s.at("2027-01-04T00:02:40Z");
    let _w = s.worker("worker-3.log");
    s.wait_ticks("m", 2);
    let t = s.ticks("m");
    assert_eq!(
        t.iter()
            .map(|t| (t.0.as_str(), t.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("2027-01-04T00:01:00.000Z", "ENQUEUED"),
            ("2027-01-04T00:02:00.000Z", "ENQUEUED"),
        ]
    );
    assert_eq!(
        s.db.scalar("SELECT reason FROM ScheduleTick WHERE dueAt = '2027-01-04T00:02:00.000Z'"),
        "on time"
    );
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "2");
}

#[test]
fn kill_9_between_decision_and_commit_loses_nothing_and_enqueues_once() {
    let s = Setup::new("sched-kill", T0, MINUTELY);
    let mut c = s.db.cmd();
    s.clock.apply(&mut c);
    c.env("RUST_LOG", "info,jobmgr::schedule=debug")
        .arg("worker");
    let mut w = s.db.spawn_worker_cmd(c, "worker-1.log");
    s.wait_seen("m");
    // Hold the write lock, so the scheduler's transaction cannot commit.
    let lock = s.db.conn();
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    s.at("2027-01-04T00:03:10Z");
    wait_log(&w, "scheduler: recording 3 decisions");
    w.signal("KILL");
    w.wait_exit(WAIT);
    lock.execute_batch("ROLLBACK")
        .expect("release the write lock");
    drop(lock);
    assert_eq!(s.ticks("m").len(), 0, "nothing was committed");
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "0");

    // The next worker decides the same due times, once.
    let w = s.worker("worker-2.log");
    s.wait_ticks("m", 3);
    stop_worker(w);
    let w = s.worker("worker-3.log");
    wait_log(&w, "scheduler: first pass done");
    let t = s.ticks("m");
    assert_eq!(
        t.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["SKIPPED_MISSED", "SKIPPED_MISSED", "ENQUEUED"],
        "00:01 and 00:02 are more than 60 s old; 00:03 is on time"
    );
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "1");
    assert_eq!(
        s.db.scalar("SELECT count(*) FROM JobRun WHERE scheduledFor = '2027-01-04T00:03:00.000Z'"),
        "1"
    );
}

#[test]
fn a_clock_jump_forward_and_back_is_logged_and_decides_each_due_time_once() {
    let s = Setup::new(
        "sched-jump",
        T0,
        "[schedules.ten]\njob = \"noop\"\ncron = \"*/10 * * * *\"\noverlap = \"allow\"\n",
    );
    let w = s.worker("worker.log");
    s.wait_seen("ten");
    // Forward three hours: 00:10 .. 02:50 missed, 03:00 on time.
    s.at("2027-01-04T03:00:05Z");
    s.wait_ticks("ten", 18);
    wait_log(&w, "wall clock moved 10");
    let out = s.outcomes("ten");
    assert_eq!(out.iter().filter(|o| *o == "SKIPPED_MISSED").count(), 17);
    assert_eq!(out.last().map(String::as_str), Some("ENQUEUED"));
    // Back two hours: the due times between are already decided.
    s.at("2027-01-04T01:00:05Z");
    wait_log(&w, "wall clock moved -72");
    s.at("2027-01-04T01:10:05Z");
    s.at("2027-01-04T03:10:05Z");
    s.wait_ticks("ten", 19);
    assert_eq!(s.ticks("ten").len(), 19);
    assert_eq!(
        s.db.scalar("SELECT count(*) FROM ScheduleTick GROUP BY dueAt HAVING count(*) > 1"),
        ""
    );
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "2");
}
