//! Shared helpers for the integration tests: a unique temporary database
//! per test, running the jobmgr binary, waiting for a condition with a
//! deadline, and reading the SQLite file directly.
#![allow(dead_code)]

pub mod cdp;
pub mod command;
pub mod http;
pub mod page;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_jobmgr");

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory and database path for one test; removed on drop.
pub struct TestDb {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl TestDb {
    /// A new, empty location (the database is created on first use).
    pub fn new(name: &str) -> TestDb {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "jobmgr-test-{name}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create test dir");
        let path = dir.join("jobmgr.db");
        TestDb { dir, path }
    }

    /// A `jobmgr` command on this database with fast test timings.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--db").arg(&self.path);
        test_env(&mut c);
        c
    }

    /// `jobmgr --db <this> args...`, started by `sh` after the shell
    /// commands `limits` (such as `ulimit -n 48`), with the test timings.
    pub fn cmd_with_limits(&self, limits: &str, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!("{limits} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .arg("--db")
            .arg(&self.path)
            .args(args);
        test_env(&mut c);
        c
    }

    /// Runs `jobmgr --db <this> args...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run jobmgr")
    }

    /// Runs a command that must succeed; returns its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "jobmgr {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "jobmgr {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Enqueues a run and returns its id.
    pub fn enqueue(&self, name: &str, params: &[&str]) -> i64 {
        let mut args = vec!["enqueue", name];
        for p in params {
            args.push("-p");
            args.push(p);
        }
        self.ok(&args).parse().expect("enqueue prints the new id")
    }

    /// Starts `jobmgr worker` with extra arguments; stderr goes to a file.
    pub fn spawn_worker(&self, extra: &[&str]) -> Worker {
        let mut cmd = self.cmd();
        cmd.arg("worker").args(extra);
        let log = format!("worker-{}.log", COUNTER.fetch_add(1, Ordering::Relaxed));
        self.spawn_worker_cmd(cmd, &log)
    }

    /// Starts a prepared worker command, its stderr in `log` (in the test
    /// dir).
    pub fn spawn_worker_cmd(&self, mut cmd: Command, log: &str) -> Worker {
        let log = self.dir.join(log);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create worker log"))
            .spawn()
            .expect("spawn worker");
        Worker { child, log }
    }

    /// Starts `jobmgr serve --bind 127.0.0.1:0 extra...` and reads the
    /// admin URL from its first stdout line.
    pub fn spawn_serve(&self, extra: &[&str]) -> Serve {
        let log = self.dir.join(format!(
            "serve-{}.log",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cmd = self.cmd();
        cmd.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .args(extra);
        self.spawn_server(cmd, log)
    }

    /// Starts a prepared server command with one extra environment variable.
    pub fn spawn_server_with_env(&self, mut cmd: Command, key: &str, value: &str) -> Serve {
        let log = self.dir.join(format!(
            "serve-{}.log",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        cmd.env_remove("JOBMGR_TOKEN")
            .env_remove("JOBMGR_MAINTENANCE_MS");
        cmd.env(key, value);
        self.start_server(cmd, log)
    }

    /// Starts a prepared server command and reads the admin URL it prints.
    pub fn spawn_server(&self, mut cmd: Command, log: PathBuf) -> Serve {
        cmd.env_remove("JOBMGR_TOKEN")
            .env_remove("JOBMGR_MAINTENANCE_MS");
        self.start_server(cmd, log)
    }

    fn start_server(&self, mut cmd: Command, log: PathBuf) -> Serve {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create serve log"))
            .spawn()
            .expect("spawn serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("serve stdout");
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let line = line.trim_end().to_string();
        let url = line.strip_prefix("jobmgr admin: ").unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "serve printed {line:?}, stderr:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let rest = url.strip_prefix("http://").expect("http URL");
        let (addr, tail) = rest.split_once('/').expect("URL has a path");
        let token = tail
            .strip_prefix("admin/jobs?token=")
            .expect("URL carries the token")
            .to_string();
        Serve {
            child,
            log,
            url: url.to_string(),
            api: http::Api {
                addr: addr.to_string(),
                token,
            },
            _stdout: reader,
        }
    }

    /// Inserts a RUNNING run held by a worker whose heartbeat is long gone.
    pub fn insert_stalled_run(&self) -> i64 {
        let c = self.conn();
        c.execute(
            "INSERT INTO Worker (hostname, pid, version, state, startedAt, heartbeatAt) \
             VALUES ('gone', 999999, 'x', 'RUNNING', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
            [],
        )
        .expect("insert worker");
        let w = c.last_insert_rowid();
        c.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, startedAt, workerId, updatedAt) \
             VALUES ('demo-multi-phase', 'RUNNING', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', ?1, \
             '2020-01-01T00:00:00.000Z')",
            [w],
        )
        .expect("insert run");
        c.last_insert_rowid()
    }

    /// Inserts a STOPPED worker that lived 100 s, its writer busy 25 s of
    /// them over 5,000 commits, 20 s inside them, 1 s waiting for the lock
    /// and 10 s in COMMIT: figures whose shares are exact.
    pub fn insert_worker_with_writer_load(&self) {
        self.conn()
            .execute_batch(
                "INSERT INTO Worker (hostname, pid, version, state, concurrency, startedAt, \
                 heartbeatAt, stoppedAt, writerBusyUs, writerCommits, writerCommitUs, \
                 writerLockWaitUs, writerSyncUs) VALUES ('elsewhere', 4242, 'v', 'STOPPED', 4, \
                 '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:40.000Z', \
                 '2026-01-01T00:01:40.000Z', 25000000, 5000, 20000000, 1000000, 10000000)",
            )
            .expect("insert worker");
    }

    /// A direct connection to the database file.
    pub fn conn(&self) -> Connection {
        let c = Connection::open(&self.path).expect("open test db");
        c.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        c
    }

    /// Runs `sql` and returns every row as JSON values.
    pub fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        query_at(&self.path, sql)
    }

    /// The first column of the first row as text ("" when NULL).
    pub fn scalar(&self, sql: &str) -> String {
        match self.query(sql).first().and_then(|r| r.first()).cloned() {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }

    /// A run's status.
    pub fn status_of(&self, id: i64) -> String {
        self.scalar(&format!("SELECT status FROM JobRun WHERE id = {id}"))
    }

    /// Waits until run `id` has `status`.
    pub fn wait_status(&self, id: i64, status: &str, within: Duration) {
        if !poll_until(within, || self.status_of(id) == status) {
            panic!(
                "timed out after {within:?} waiting for run {id} to be {status}; the run: {}\n{}",
                self.scalar(&format!(
                    "SELECT status || ' stage=' || coalesce(currentStage, '-') || ' processed=' \
                     || entitiesProcessed || ' worker=' || coalesce(workerId, '-') || ' error=' \
                     || coalesce(error, '-') FROM JobRun WHERE id = {id}"
                )),
                self.log_tails()
            );
        }
    }

    /// The last lines of every `.log` file in the test's directory (the
    /// workers' and servers' stderr), for a failure message.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                out.push_str(&format!("== {}\n{tail}\n", path.display()));
            }
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A failed test leaves its database and logs for a look.
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A worker process, killed on drop if still running.
pub struct Worker {
    pub child: Child,
    pub log: PathBuf,
}

impl Worker {
    /// The worker's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the worker.
    pub fn signal(&self, sig: &str) {
        assert!(
            send_signal(self.child.id(), sig),
            "kill -{sig} {}",
            self.child.id()
        );
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let code = exit_code(&mut self.child, within);
        assert!(
            code.is_some(),
            "timed out after {within:?} waiting for worker to exit"
        );
        code
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `jobmgr serve`; stopped with SIGTERM (then killed) on drop.
pub struct Serve {
    pub child: Child,
    pub log: PathBuf,
    /// The admin URL printed at start.
    pub url: String,
    pub api: http::Api,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Serve {
    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        assert!(
            send_signal(self.child.id(), sig),
            "kill -{sig} {}",
            self.child.id()
        );
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let code = exit_code(&mut self.child, within);
        assert!(
            code.is_some(),
            "timed out after {within:?} waiting for server to exit"
        );
        code
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM lets serve stop the worker it started.
        if let Ok(None) = self.child.try_wait()
            && !(send_signal(self.child.id(), "TERM")
                && exit_code(&mut self.child, Duration::from_secs(10)).is_some())
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` is alive.
pub fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// Polls `cond` until it holds or `within` passes (then panics naming `what`).
pub fn wait_for(what: &str, within: Duration, cond: impl FnMut() -> bool) {
    if !poll_until(within, cond) {
        panic!("timed out after {within:?} waiting for {what}");
    }
}

/// Polls `cond` every 20 ms until it holds (true) or `within` passes
/// (false): the one place the tests wait.
pub fn poll_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Shell commands that make files stop growing at 300 KB (`ulimit -f`
/// counts 512-byte blocks in dash, 1,024 in bash: 300 or 600 KB), like a
/// full disk: SIGXFSZ is ignored, so a write past the limit fails with
/// EFBIG instead of killing the process; only the soft limit is set, so
/// that `prlimit` can lift it without privileges.
pub const FILE_SIZE_LIMIT: &str = "trap '' XFSZ; ulimit -S -f 600";

fn test_env(c: &mut Command) {
    c.env("JOBMGR_HEARTBEAT_MS", "200")
        .env("JOBMGR_STALE_AFTER_MS", "1500")
        .env("RUST_LOG", "info,refinery_core=warn")
        .env_remove("JOBMGR_DB")
        .env_remove("JOBMGR_DRAIN_TIMEOUT")
        .env_remove("JOBMGR_CONCURRENCY");
}

/// Lifts the file-size limit of process `pid` (see [`FILE_SIZE_LIMIT`]).
pub fn lift_file_size_limit(pid: u32) {
    let lifted = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--fsize=unlimited"])
        .status()
        .expect("run prlimit");
    assert!(lifted.success(), "prlimit failed");
}

/// Sends `kill -SIG` to `pid`; whether it was delivered.
pub fn send_signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Waits up to `within` for `child` to exit; its exit code (-1 for a
/// signal), or None when it is still running.
pub fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let mut code = None;
    poll_until(within, || match child.try_wait() {
        Ok(Some(s)) => {
            code = Some(s.code().unwrap_or(-1));
            true
        }
        _ => false,
    });
    code
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Runs `sql` on the database file at `path` and returns every row as
/// JSON values.
pub fn query_at(path: &Path, sql: &str) -> Vec<Vec<Value>> {
    let c = Connection::open(path).expect("open database");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let mut stmt = c.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(v) => Value::from(v),
                    rusqlite::types::ValueRef::Real(v) => Value::from(v),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::from(String::from_utf8_lossy(t).to_string())
                    }
                    rusqlite::types::ValueRef::Blob(_) => Value::from("<blob>"),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Tests that move time: the test-driven clock.
pub mod clock;

/// Bytes the thread named `name` of process `pid` has written (`wchar` of
/// its `/proc` io counters); None when it has no such thread.
pub fn thread_written(pid: u32, name: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        if comm.trim() != name {
            return None;
        }
        let io = std::fs::read_to_string(t.path().join("io")).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("wchar: "))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The WAL's length in frames and how many of them are in the database
/// file `db`, from the wal-index header in `<db>-shm` (`mxFrame` at byte 16,
/// `nBackfill` at byte 96; SQLite's documented WAL format).
pub fn wal_frames(db: &Path) -> (u32, u32) {
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let shm = std::fs::read(shm).expect("read -shm");
    let at = |i: usize| u32::from_ne_bytes(shm[i..i + 4].try_into().expect("4 bytes"));
    (at(16), at(96))
}
