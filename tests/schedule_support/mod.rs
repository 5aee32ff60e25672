//! Helpers for the schedule tests: a database with a job-type file, a
//! worker on a clock the test drives, and the ledger read back from the
//! SQLite file. Due times are reached by moving the clock, never by
//! waiting for them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::clock::DrivenClock;
use crate::common::{TestDb, Worker, poll_until};

/// Generous: the machine is shared and the tests run in parallel.
pub const WAIT: Duration = Duration::from_secs(60);

/// Milliseconds since the epoch of a UTC time text.
pub fn ms(text: &str) -> i64 {
    rusqlite::Connection::open_in_memory()
        .and_then(|c| {
            c.query_row(
                "SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000) AS INTEGER)",
                [text],
                |r| r.get::<_, Option<i64>>(0),
            )
        })
        .expect("sqlite")
        .expect("a time text")
}

/// The stored text of `ms`.
pub fn text(ms: i64) -> String {
    crate::common::clock::timestamp_text(ms)
}

/// Job types every schedule test can use: `noop` ends at once, `gate`
/// runs until the file named by its parameter exists.
const JOBS: &str = r#"
[jobs.noop]
command = ["true"]

[jobs.gate]
command = ["sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.02; done", "gate", "{param:gate}"]

[jobs.gate.parameters.gate]
type = "string"
required = true
"#;

/// A test database with a job-type file and a driven clock.
pub struct Setup {
    pub db: TestDb,
    pub clock: DrivenClock,
}

impl Setup {
    /// A database whose jobmgr.toml holds the test job types and then
    /// `schedules` (where `{gate}` stands for [`Setup::gate`]), migrated,
    /// with the clock at `start`.
    pub fn new(name: &str, start: &str, schedules: &str) -> Setup {
        let db = TestDb::new(name);
        let clock = DrivenClock::new(&db, ms(start));
        let s = Setup { db, clock };
        let toml = format!("{JOBS}\n{}", schedules.replace("{gate}", &s.gate_text()));
        std::fs::write(s.db.dir.join("jobmgr.toml"), toml).expect("write jobmgr.toml");
        s.ok(&["migrate"]);
        s
    }

    /// `jobmgr args...` on the test's clock.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.db.cmd();
        self.clock.apply(&mut c);
        c.args(args);
        c
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run jobmgr");
        assert!(
            out.status.success(),
            "jobmgr {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs a command that must fail; (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.cmd(args).output().expect("run jobmgr");
        assert!(!out.status.success(), "jobmgr {args:?} should have failed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Starts a worker on the test's clock.
    pub fn worker(&self, log: &str) -> Worker {
        let mut c = self.db.cmd();
        self.clock.apply(&mut c);
        c.arg("worker");
        self.db.spawn_worker_cmd(c, log)
    }

    /// The file that ends the `gate` job's runs.
    pub fn gate(&self) -> PathBuf {
        self.db.dir.join("gate")
    }

    fn gate_text(&self) -> String {
        self.gate().display().to_string()
    }

    /// Lets every `gate` run end.
    pub fn open_gate(&self) {
        std::fs::write(self.gate(), "").expect("open the gate");
    }

    /// The ledger of `name` in due order: (dueAt, outcome, runId).
    pub fn ticks(&self, name: &str) -> Vec<(String, String, Option<i64>)> {
        self.db
            .query(&format!(
                "SELECT dueAt, outcome, runId FROM ScheduleTick WHERE scheduleName = '{name}' \
                 ORDER BY dueAt"
            ))
            .into_iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_string(),
                    r[1].as_str().unwrap_or_default().to_string(),
                    r[2].as_i64(),
                )
            })
            .collect()
    }

    /// The ledger's outcomes only.
    pub fn outcomes(&self, name: &str) -> Vec<String> {
        self.ticks(name).into_iter().map(|t| t.1).collect()
    }

    /// Waits until `name` has at least `n` ledger rows.
    pub fn wait_ticks(&self, name: &str, n: usize) {
        if !poll_until(WAIT, || self.ticks(name).len() >= n) {
            panic!(
                "timed out waiting for {n} ledger rows of {name}; have {:?}\n{}",
                self.ticks(name),
                self.db.log_tails()
            );
        }
    }

    /// Waits until the scheduler has seen `name` (its state row exists).
    pub fn wait_seen(&self, name: &str) {
        let seen = || {
            self.db.scalar(&format!(
                "SELECT count(*) FROM ScheduleState WHERE scheduleName = '{name}'"
            )) == "1"
        };
        if !poll_until(WAIT, seen) {
            panic!("the scheduler never saw {name}\n{}", self.db.log_tails());
        }
    }

    /// Moves the clock to `at`.
    pub fn at(&self, at: &str) {
        self.clock.set(ms(at));
    }
}

/// Stops a worker with SIGTERM and waits for it to exit.
pub fn stop_worker(mut w: Worker) {
    w.signal("TERM");
    assert!(
        w.wait_exit(WAIT).is_some(),
        "the worker did not stop\n{}",
        w.log_text()
    );
}

/// Waits until the worker's log holds `text`.
pub fn wait_log(w: &Worker, text: &str) {
    if !poll_until(WAIT, || w.log_text().contains(text)) {
        panic!("the worker never logged {text:?}:\n{}", w.log_text());
    }
}
