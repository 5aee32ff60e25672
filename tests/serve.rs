//! `jobmgr serve` as a process: it supervises the worker it started
//! (restarting it after a crash, stopping it gracefully on SIGTERM) and
//! leaves a worker started by hand alone.

mod common;

use std::time::Duration;

use common::{Serve, TestDb, pid_alive, wait_for};

const WAIT: Duration = Duration::from_secs(20);

fn running_pid(db: &TestDb) -> Option<i64> {
    // The worker may not have created the schema yet: no table, no worker.
    db.conn()
        .query_row(
            "SELECT pid FROM Worker WHERE state = 'RUNNING' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn sigterm_stops_the_supervised_worker_gracefully() {
    let db = TestDb::new("serveterm");
    let mut s = db.spawn_serve(&[]);
    wait_for("the supervised worker", WAIT, || running_pid(&db).is_some());
    let pid = running_pid(&db).expect("pid");
    assert_eq!(s.api.ok("/api/worker")["supervised"], true);
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0), "{}", s.log_text());
    assert!(!pid_alive(pid), "the worker was waited for");
    assert_eq!(
        db.scalar("SELECT state FROM Worker"),
        "STOPPED",
        "it stopped, not died"
    );
}

#[test]
fn a_crashed_worker_is_restarted() {
    let db = TestDb::new("serverestart");
    let _s = db.spawn_serve(&[]);
    wait_for("the supervised worker", WAIT, || running_pid(&db).is_some());
    let pid = running_pid(&db).expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(killed);
    wait_for("a new worker to take over", WAIT, || {
        running_pid(&db).is_some_and(|p| p != pid)
    });
    assert_eq!(
        db.scalar(&format!("SELECT state FROM Worker WHERE pid = {pid}")),
        "DEAD",
        "the new worker declared the killed one dead"
    );
}

/// serve knows at once that its worker died: the row is DEAD and its run
/// resolved before the restart (0.5 s later) and long before stale-after.
#[test]
fn a_killed_supervised_worker_is_declared_dead_at_once() {
    let db = TestDb::new("servekilled");
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .env("JOBMGR_STALE_AFTER_MS", "60000");
    let s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "3600000");
    // Not retry-safe: a lost run is failed.
    let id = db.enqueue("demo-multi-phase", &["count=100000", "delay_ms=20"]);
    db.wait_status(id, "RUNNING", WAIT);
    let pid = running_pid(&db).expect("pid");
    assert!(common::send_signal(pid as u32, "KILL"));
    db.wait_status(id, "FAILED", WAIT);
    let err = db.scalar(&format!("SELECT error FROM JobRun WHERE id = {id}"));
    assert!(
        err.starts_with("worker lost: worker 1 (pid ")
            && err.ends_with("exited without finishing the run (seen by its supervisor)"),
        "{err}"
    );
    wait_for("the restarted worker", WAIT, || {
        running_pid(&db).is_some_and(|p| p != pid)
    });
    // Declared dead by serve, before the new worker existed.
    let gap = db.scalar(
        "SELECT CAST((julianday(n.startedAt) - julianday(o.stoppedAt)) * 86400000 AS INTEGER) \
         FROM Worker o, Worker n WHERE o.id = 1 AND n.id = 2",
    );
    assert!(
        gap.parse::<i64>().unwrap() >= 300,
        "gap {gap} ms; {}",
        s.log_text()
    );
    assert_eq!(db.scalar("SELECT state FROM Worker WHERE id = 1"), "DEAD");
}

#[test]
fn a_hand_started_worker_is_left_alone() {
    let db = TestDb::new("servehand");
    let mut w = db.spawn_worker(&[]);
    wait_for("the hand-started worker", WAIT, || {
        running_pid(&db).is_some()
    });
    let pid = running_pid(&db).expect("pid");
    let mut s = db.spawn_serve(&[]);
    let status = s.api.ok("/api/worker");
    assert_eq!(status["state"], "RUNNING");
    assert_eq!(status["worker"]["pid"], pid);
    assert_eq!(status["supervised"], false);
    let r = s.api.post("/api/worker/start", &serde_json::json!({}));
    assert_eq!(r.status, 409);
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0));
    assert_eq!(
        db.scalar("SELECT count(*) FROM Worker"),
        "1",
        "serve started no worker of its own"
    );
    assert!(
        w.child.try_wait().expect("try_wait").is_none(),
        "the hand-started worker still runs"
    );
    assert_eq!(running_pid(&db), Some(pid));
    w.signal("TERM");
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

#[test]
fn sigint_stops_the_server_and_its_worker() {
    let db = TestDb::new("serveint");
    let mut s = db.spawn_serve(&[]);
    wait_for("the supervised worker", WAIT, || running_pid(&db).is_some());
    let pid = running_pid(&db).expect("pid");
    s.signal("INT");
    assert_eq!(s.wait_exit(WAIT), Some(0), "{}", s.log_text());
    assert!(!pid_alive(pid));
    assert_eq!(db.scalar("SELECT state FROM Worker"), "STOPPED");
}

#[test]
fn the_maintenance_tick_resolves_stale_workers_runs() {
    let db = TestDb::new("tick");
    let mut cmd = db.cmd();
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-worker"]);
    let _s = db.spawn_server_with_env(cmd, "JOBMGR_MAINTENANCE_MS", "100");
    let id = db.insert_stalled_run();
    db.wait_status(id, "FAILED", WAIT);
    assert_eq!(db.scalar("SELECT state FROM Worker"), "DEAD");
}

/// One GET /healthz with a short timeout: whether it was answered 200.
fn healthz_answers(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// With every file descriptor taken, accepting a connection fails, and so
/// does splitting an accepted socket into its reading and writing halves
/// (which takes a second descriptor). The server must keep trying and serve
/// again once descriptors are freed, instead of staying alive but deaf.
/// Two limits one apart, so that one of them runs out at the accept and the
/// other at the split, whichever the server's own descriptors make it.
#[test]
fn the_server_serves_again_after_running_out_of_file_descriptors() {
    for limit in [48, 49] {
        serves_again_after_running_out_of_descriptors(limit);
    }
}

fn serves_again_after_running_out_of_descriptors(limit: u32) {
    let db = TestDb::new(&format!("emfile{limit}"));
    let log = db.dir.join("serve-emfile.log");
    let cmd = db.cmd_with_limits(
        &format!("ulimit -n {limit}"),
        &["serve", "--bind", "127.0.0.1:0", "--no-worker"],
    );
    let s = db.spawn_server(cmd, log);
    assert!(healthz_answers(&s.api.addr));
    exhaust_then_recover(&s, "Error accepting new client");
}

/// Opens idle connections to `s`, each holding a descriptor and a thread
/// in the server, one more at a time until its log shows `refusal`; the
/// accept thread must not die meanwhile. (A connect can be refused while
/// the server's accept queue is full; the next one is tried.) Then frees
/// them all and expects the server to answer again.
fn exhaust_then_recover(s: &Serve, refusal: &str) {
    let addr = &s.api.addr;
    let mut held = Vec::new();
    wait_for(refusal, WAIT, || {
        held.extend(std::net::TcpStream::connect(addr).ok());
        let log = s.log_text();
        assert!(!log.contains("panicked"), "the accept thread died:\n{log}");
        log.contains(refusal)
    });
    drop(held);
    wait_for("the server to answer again", WAIT, || healthz_answers(addr));
}

/// A cgroup (v1 `pids` controller) capping how many threads the processes
/// in it may have; removed on drop (after the process in it has ended).
struct ThreadCap(std::path::PathBuf);

impl ThreadCap {
    /// `None` where the controller cannot be written (not root, or a system
    /// with cgroup v2 only).
    fn new(name: &str) -> Option<ThreadCap> {
        let dir = std::path::Path::new("/sys/fs/cgroup/pids")
            .join(format!("jobmgr-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(ThreadCap(dir))
    }

    /// Moves process `pid` in, allowing it `more` threads than it has now.
    fn hold(&self, pid: u32, more: usize) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let threads: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("thread count");
        let write = |file: &str, value: String| {
            std::fs::write(self.0.join(file), value).unwrap_or_else(|e| panic!("{file}: {e}"))
        };
        write("pids.max", (threads + more).to_string());
        write("cgroup.procs", pid.to_string());
    }
}

impl Drop for ThreadCap {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// When the system refuses a thread for a new connection (a task limit
/// such as systemd's TasksMax), that connection is closed and the server
/// goes on, instead of its accept thread dying and leaving it deaf.
#[test]
fn the_server_serves_again_after_the_system_refuses_it_threads() {
    let Some(cap) = ThreadCap::new("threads") else {
        eprintln!("skipped: the cgroup pids controller is not writable here (needs root)");
        return;
    };
    let db = TestDb::new("threadcap");
    let s = db.spawn_serve(&["--no-worker"]);
    assert!(healthz_answers(&s.api.addr));
    cap.hold(s.child.id(), 3);
    exhaust_then_recover(&s, "Error starting a thread for a new client");
    // The server ends before its cgroup is removed.
    drop(s);
}

/// A write the disk refuses (here: the server may not grow a file past
/// 300 KB, like a full disk) fails the enqueue with a clear error, leaves
/// the server answering, and loses no run it acknowledged; once writes are
/// possible again, the same server enqueues again.
#[test]
fn a_refused_write_fails_enqueues_cleanly_and_loses_nothing_acknowledged() {
    let db = TestDb::new("diskfull");
    db.ok(&["migrate"]);
    let log = db.dir.join("serve-diskfull.log");
    let cmd = db.cmd_with_limits(
        common::FILE_SIZE_LIMIT,
        &["serve", "--bind", "127.0.0.1:0", "--no-worker"],
    );
    let mut s = db.spawn_server(cmd, log);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let r = s.api.post(
            "/api/jobs",
            &serde_json::json!({"jobName": "demo-known-total", "parameters": {"count": i}}),
        );
        if r.status != 201 {
            refused = Some(r);
            break;
        }
        acked.push((r.json()["run"]["id"].as_i64().unwrap(), i));
    }
    let r = refused.expect("the write limit was never reached");
    assert!(
        r.status == 500 || r.status == 507,
        "{} {}",
        r.status,
        r.text()
    );
    let err = &r.json()["error"];
    assert!(
        err["code"] == "database_error" || err["code"] == "disk_full",
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("disk"), "{err}");
    assert!(!acked.is_empty());
    // Still answering, reads included.
    let (last, _) = acked[acked.len() - 1];
    assert_eq!(s.api.ok(&format!("/api/jobs/{last}"))["run"]["id"], last);
    // Room again (as when a full disk is cleaned up): the same server
    // enqueues again.
    common::lift_file_size_limit(s.child.id());
    let r = s.api.post(
        "/api/jobs",
        &serde_json::json!({"jobName": "demo-known-total", "parameters": {"count": 99_999}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    acked.push((r.json()["run"]["id"].as_i64().unwrap(), 99_999));
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0), "{}", s.log_text());

    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        acked.len().to_string()
    );
    for (id, count) in &acked {
        assert_eq!(
            db.scalar(&format!(
                "SELECT json_extract(parameters, '$.count') FROM JobRun WHERE id = {id}"
            )),
            count.to_string()
        );
    }
    assert_eq!(
        db.scalar("SELECT n FROM JobRunCount WHERE status = 'ALL'"),
        acked.len().to_string()
    );
}

#[test]
fn serve_checkpoints_the_group_commit_s_wal_on_its_own_thread_and_at_stop() {
    let db = TestDb::new("serve-checkpoint");
    let mut s = db.spawn_serve(&["--no-worker"]);
    // About 5 frames a POST: 300 take the WAL past the 1,000 frames that
    // wake the checkpointer.
    for i in 0..300 {
        let body = serde_json::json!({"jobName": "demo-quick", "parameters": {"count": i}});
        let r = s.api.post("/api/jobs", &body);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let pid = s.child.id();
    wait_for("the checkpointer to copy the WAL", WAIT, || {
        common::thread_written(pid, "checkpointer").unwrap_or(0) > 0
    });
    // Open (and read) so that serve's connections are not the last and
    // SQLite's own checkpoint at close does not run.
    let reader = db.conn();
    let runs: i64 = reader
        .query_row("SELECT count(*) FROM JobRun", [], |r| r.get(0))
        .expect("count runs");
    assert_eq!(runs, 300);
    s.signal("TERM");
    assert_eq!(s.wait_exit(WAIT), Some(0), "{}", s.log_text());
    let (log, done) = common::wal_frames(&db.path);
    assert!(
        log > 0 && done == log,
        "{done} of {log} frames checkpointed at stop"
    );
    assert_eq!(db.scalar("PRAGMA integrity_check"), "ok");
    drop(reader);
}

/// The descriptors `pid` holds open on the database file itself: one per
/// SQLite connection (each also opens the `-wal` file; the `-shm` file is
/// shared).
fn database_descriptors(pid: u32, db: &std::path::Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the server's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == db)
        .count()
}

/// Each SQLite connection parses the whole schema when it opens (about
/// 1.6 ms): `serve` answers its first request holding only the two it
/// needs, the pool's first (the connection that checked the file, then
/// migrated) and the change watcher's. The checkpointer opens its own at
/// its first checkpoint. With the maintenance tick far away, the watcher is
/// the only user of the pool, one connection at a time.
#[test]
fn serve_answers_first_holding_only_the_pool_s_and_the_watcher_s_connections() {
    let db = TestDb::new("serve-connections");
    db.ok(&["migrate"]);
    let s = db.spawn_serve(&["--no-worker", "--maintenance-ms", "3600000"]);
    assert!(healthz_answers(&s.api.addr));
    assert_eq!(
        database_descriptors(s.child.id(), &db.path),
        2,
        "connections open on {} after the first answer",
        db.path.display()
    );
}
