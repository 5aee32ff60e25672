//! A paused process fails nothing. `jobmgr serve` and its worker are
//! stopped with SIGSTOP, together or alone, for longer than stale-after
//! (1.5 s in the tests) and continued: serve asks before it declares a
//! worker dead (its own child that is alive, even stopped, is not dead; a
//! worker of its own pause gets a fresh window), its periodic sweep never
//! holds the write lock while it has nothing to change, and a worker that
//! really was declared dead writes nothing over what recovery decided.

mod common;

use std::time::{Duration, Instant};

use common::{Serve, TestDb, pid_alive, poll_until, send_signal, wait_for};
use rusqlite::Connection;

const WAIT: Duration = Duration::from_secs(30);
/// Longer than the tests' stale-after (1.5 s) and the worker's write-retry
/// window (the same): how long a heartbeat must look old before a stopped
/// process is continued.
const SILENT_MS: f64 = 2_500.0;

/// A run long enough (about 5 s of work) to be RUNNING across each pause;
/// not retry-safe, so a worker wrongly declared dead shows as FAILED.
fn enqueue_long(db: &TestDb) -> i64 {
    db.enqueue("demo-multi-phase", &["count=40", "delay_ms=100"])
}

fn serve(db: &TestDb, extra: &[&str]) -> Serve {
    let mut args = vec!["--maintenance-ms", "100"];
    args.extend_from_slice(extra);
    db.spawn_serve(&args)
}

/// The active worker's id and pid.
fn active_worker(db: &TestDb) -> Option<(i64, u32)> {
    db.conn()
        .query_row(
            "SELECT id, pid FROM Worker WHERE state = 'RUNNING' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
}

/// How long ago worker `id` last heartbeat, by the database's clock.
fn heartbeat_age_ms(db: &TestDb, id: i64) -> f64 {
    db.conn()
        .query_row(
            "SELECT (julianday('now') - julianday(heartbeatAt)) * 86400000.0 FROM Worker \
             WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or(0.0)
}

/// Waits until `id` is RUNNING on the active worker and has made progress.
fn wait_running(db: &TestDb, id: i64) -> (i64, u32) {
    db.wait_status(id, "RUNNING", WAIT);
    wait_for("progress of the run", WAIT, || {
        db.scalar(&format!(
            "SELECT entitiesProcessed FROM JobRun WHERE id = {id}"
        )) != "0"
    });
    active_worker(db).expect("an active worker")
}

/// The run completed at its first attempt, on worker `worker`, which is
/// still the active worker; no run failed.
fn assert_completed_on(db: &TestDb, id: i64, worker: i64) {
    db.wait_status(id, "COMPLETED", WAIT);
    assert_eq!(
        db.scalar(&format!(
            "SELECT attempt || ' ' || workerId FROM JobRun WHERE id = {id}"
        )),
        format!("1 {worker}"),
        "{}",
        db.log_tails()
    );
    assert_eq!(
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")),
        "RUNNING",
        "the worker was not declared dead\n{}",
        db.log_tails()
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'FAILED'"),
        "0"
    );
}

/// Continues the processes it names when dropped, so that a failed
/// assertion leaves no process stopped.
struct Continue(Vec<u32>);

impl Drop for Continue {
    fn drop(&mut self) {
        for pid in &self.0 {
            send_signal(*pid, "CONT");
        }
    }
}

fn stop(pid: u32) {
    assert!(send_signal(pid, "STOP"), "kill -STOP {pid}");
}

/// SIGSTOP by a direct system call: `kill(1)` takes milliseconds to start,
/// far longer than a transaction lasts.
fn stop_at_once(pid: u32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // `pid` is a child of this test, not yet reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
    assert_eq!(rc, 0, "kill -STOP {pid}");
}

fn cont(pid: u32) {
    assert!(send_signal(pid, "CONT"), "kill -CONT {pid}");
}

/// Waits until worker `id` has been silent for longer than stale-after.
fn wait_silent(db: &TestDb, id: i64) {
    wait_for("the heartbeat to look old", WAIT, || {
        heartbeat_age_ms(db, id) > SILENT_MS
    });
}

#[test]
fn serve_and_its_worker_paused_together_finish_the_running_run() {
    let db = TestDb::new("pauseboth");
    let s = serve(&db, &[]);
    let id = enqueue_long(&db);
    let (worker, pid) = wait_running(&db, id);
    let _cont = Continue(vec![s.child.id(), pid]);
    stop(s.child.id());
    stop(pid);
    wait_silent(&db, worker);
    // serve first: it ticks at once, while its worker is still stopped.
    cont(s.child.id());
    let declared = poll_until(Duration::from_millis(400), || {
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")) == "DEAD"
    });
    cont(pid);
    assert!(
        !declared,
        "serve declared its own stopped child dead\n{}",
        db.log_tails()
    );
    assert_completed_on(&db, id, worker);
}

#[test]
fn a_hand_started_worker_paused_with_serve_gets_a_fresh_window() {
    let db = TestDb::new("pausehand");
    let s = serve(&db, &["--no-worker"]);
    let _w = db.spawn_worker(&[]);
    let id = enqueue_long(&db);
    let (worker, pid) = wait_running(&db, id);
    let _cont = Continue(vec![s.child.id(), pid]);
    stop(pid);
    stop(s.child.id());
    wait_silent(&db, worker);
    // serve first, and a while alone: only its noticing its own pause
    // keeps it from declaring a worker dead whose heartbeat looks old.
    cont(s.child.id());
    let declared = poll_until(Duration::from_millis(400), || {
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")) == "DEAD"
    });
    cont(pid);
    assert!(
        !declared,
        "serve declared a worker dead that was paused with it\n{}",
        db.log_tails()
    );
    assert_completed_on(&db, id, worker);
    assert!(
        s.log_text().contains("this server was paused"),
        "{}",
        s.log_text()
    );
}

#[test]
fn serves_own_worker_paused_alone_is_waited_for() {
    let db = TestDb::new("pausechild");
    let s = serve(&db, &[]);
    let id = enqueue_long(&db);
    let (worker, pid) = wait_running(&db, id);
    let _cont = Continue(vec![pid]);
    stop(pid);
    wait_silent(&db, worker);
    assert_ne!(
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")),
        "DEAD",
        "serve declared its own stopped child dead\n{}",
        db.log_tails()
    );
    // serve kept sweeping all along (every 100 ms) and says why it waits.
    wait_for("serve to say it waits for its child", WAIT, || {
        s.log_text().contains("but its process is alive")
    });
    cont(pid);
    assert_completed_on(&db, id, worker);
}

#[test]
fn a_hand_started_worker_paused_alone_is_fenced_and_writes_nothing_after_recovery() {
    let db = TestDb::new("pausefenced");
    let _s = serve(&db, &["--no-worker"]);
    let mut w = db.spawn_worker(&[]);
    let id = enqueue_long(&db);
    let (worker, pid) = wait_running(&db, id);
    let _cont = Continue(vec![pid]);
    stop(pid);
    // Not serve's child: after stale-after it is declared dead.
    db.wait_status(id, "FAILED", WAIT);
    let row = |db: &TestDb| {
        db.scalar(&format!(
            "SELECT status || '|' || error || '|' || finishedAt || '|' || entitiesProcessed \
             || '|' || (SELECT count(*) FROM JobLog WHERE jobRunId = {id}) FROM JobRun \
             WHERE id = {id}"
        ))
    };
    let decided = row(&db);
    assert!(decided.contains("worker lost"), "{decided}");
    assert_eq!(
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")),
        "DEAD"
    );
    cont(pid);
    // It notices, cancels its job and exits without writing.
    let code = w.wait_exit(WAIT);
    assert_ne!(code, Some(0), "{}", w.log_text());
    assert!(w.log_text().contains("declared dead"), "{}", w.log_text());
    assert_eq!(row(&db), decided, "the fenced worker changed the run");
    assert_eq!(
        db.scalar(&format!("SELECT state FROM Worker WHERE id = {worker}")),
        "DEAD"
    );
}

/// A direct connection that never waits for a lock.
fn impatient(db: &TestDb) -> Connection {
    let c = Connection::open(&db.path).expect("open");
    c.busy_timeout(Duration::ZERO).expect("busy timeout");
    c
}

/// Whether some other connection holds the write lock now.
fn write_locked(c: &Connection) -> bool {
    match c.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {
            let _ = c.execute_batch("ROLLBACK");
            false
        }
        Err(_) => true,
    }
}

#[test]
fn an_idle_serves_sweep_takes_no_write_lock() {
    let db = TestDb::new("idlelock");
    // Sweeping every 10 ms, the shortest it allows; nothing to sweep.
    let s = db.spawn_serve(&["--no-worker", "--maintenance-ms", "10"]);
    let c = impatient(&db);
    let (mut tries, mut locked) = (0u64, 0u64);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        tries += 1;
        if write_locked(&c) {
            locked += 1;
        }
    }
    assert!(tries > 1_000, "only {tries} tries");
    assert_eq!(
        locked,
        0,
        "serve held the write lock {locked} times out of {tries} tries\n{}",
        s.log_text()
    );
}

#[test]
fn serve_paused_alone_longer_than_the_write_retry_window_fails_no_run() {
    let db = TestDb::new("pauseserve");
    let s = db.spawn_serve(&["--no-worker", "--maintenance-ms", "10"]);
    let w = db.spawn_worker(&[]);
    wait_for("the worker", WAIT, || active_worker(&db).is_some());
    // Stop serve at a moment it holds the write lock, if it ever takes it
    // while idle: a lock that stays held while serve is stopped is serve's.
    let _cont = Continue(vec![s.child.id()]);
    let c = impatient(&db);
    let until = Instant::now() + Duration::from_secs(3);
    let mut caught = false;
    while !caught && Instant::now() < until {
        if write_locked(&c) {
            stop_at_once(s.child.id());
            caught = !poll_until(Duration::from_millis(200), || !write_locked(&c));
            if !caught {
                cont(s.child.id());
            }
        }
    }
    // Stopped there, serve would keep every other process from writing:
    // the worker would give up after its retry window, an enqueue after
    // its busy timeout.
    assert!(
        !caught,
        "serve held the write lock while idle, and kept it while stopped"
    );
    stop(s.child.id());
    let stopped = Instant::now();
    // The worker writes the whole run while serve stays stopped: longer
    // than its write-retry window (stale-after, 1.5 s).
    let out = db.run(&[
        "enqueue",
        "demo-multi-phase",
        "-p",
        "count=20",
        "-p",
        "delay_ms=100",
    ]);
    assert!(
        out.status.success(),
        "enqueue while serve is stopped: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("id");
    db.wait_status(id, "COMPLETED", WAIT);
    assert!(stopped.elapsed() > Duration::from_millis(1_500));
    assert!(pid_alive(i64::from(w.child.id())), "{}", w.log_text());
    cont(s.child.id());
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'FAILED'"),
        "0"
    );
    assert_eq!(db.scalar("SELECT state FROM Worker"), "RUNNING");
}
