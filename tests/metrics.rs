//! `GET /metrics`: the rollups it reads agree with the rows after every
//! kind of change (worker finishes, cancels, recovery, hand edits, the
//! scheduler) and keep their totals when rows are deleted; the exposition
//! read by a real Prometheus text parser shows the values of known runs;
//! the token guards it on the main address and not on `--metrics-bind`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::http::{self, Resp};
use common::{TestDb, Worker, poll_until, wait_for};
use prometheus_parse::{Scrape, Value};

/// Generous: the machine is shared and the tests run in parallel.
const WAIT: Duration = Duration::from_secs(90);

/// `JobStat` as stored, and the same figures computed from `JobRun`.
const ROLLUP: &str = "SELECT jobName, status, n, timed, durationSumMs, le100ms, le500ms, le1s, \
    le5s, le10s, le30s, le1m, le5m, le15m, le1h FROM JobStat ORDER BY jobName, status";
const FROM_ROWS: &str = "SELECT jobName, status, count(*), count(d), coalesce(sum(d), 0), \
    count(CASE WHEN d <= 100 THEN 1 END), count(CASE WHEN d <= 500 THEN 1 END), \
    count(CASE WHEN d <= 1000 THEN 1 END), count(CASE WHEN d <= 5000 THEN 1 END), \
    count(CASE WHEN d <= 10000 THEN 1 END), count(CASE WHEN d <= 30000 THEN 1 END), \
    count(CASE WHEN d <= 60000 THEN 1 END), count(CASE WHEN d <= 300000 THEN 1 END), \
    count(CASE WHEN d <= 900000 THEN 1 END), count(CASE WHEN d <= 3600000 THEN 1 END) \
    FROM (SELECT jobName, status, max(0, CAST(round((unixepoch(finishedAt, 'subsec') \
    - unixepoch(startedAt, 'subsec')) * 1000) AS INTEGER)) AS d FROM JobRun \
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')) GROUP BY jobName, status \
    ORDER BY jobName, status";
const TICKS: &str = "SELECT scheduleName, outcome, n FROM ScheduleTickStat ORDER BY 1, 2";
const TICKS_FROM_ROWS: &str =
    "SELECT scheduleName, outcome, count(*) FROM ScheduleTick GROUP BY 1, 2 ORDER BY 1, 2";

fn stop(mut w: Worker) {
    w.signal("TERM");
    assert!(
        w.wait_exit(WAIT).is_some(),
        "the worker did not stop\n{}",
        w.log_text()
    );
}

#[test]
fn the_rollups_agree_with_the_rows_after_every_kind_of_change() {
    let db = TestDb::new("metrics-rollup");
    // A schedule due every second: the worker's writer records its ticks.
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[jobs.noop]\ncommand = [\"true\"]\n\n[schedules.every-second]\njob = \"noop\"\n\
         cron = \"* * * * * *\"\noverlap = \"allow\"\n",
    )
    .expect("write jobmgr.toml");
    let done = db.enqueue("demo-known-total", &["count=3", "delay_ms=1"]);
    let failed = db.enqueue("demo-multi-phase", &["count=5", "delay_ms=1", "fail_at=2"]);
    let long = db.enqueue("demo-known-total", &["count=100000", "delay_ms=20"]);
    // Cancelled before it started, by the CLI (triggers on).
    let never = db.enqueue("demo-known-total", &["count=3"]);
    db.ok(&["cancel", &never.to_string()]);
    // A run lost with its worker: recovery at the worker's start fails it.
    let lost = db.insert_stalled_run();
    // Finished runs inserted by hand, as a user's sqlite3 would.
    db.conn()
        .execute_batch(
            // Recent, so that the worker's retention keeps it.
            "INSERT INTO JobRun (jobName, status, createdAt, startedAt, finishedAt, updatedAt) \
             VALUES ('imported', 'COMPLETED', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+42.5 seconds'), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));",
        )
        .expect("insert a finished run");
    let w = db.spawn_worker(&["--concurrency", "4"]);
    for (id, status) in [(done, "COMPLETED"), (failed, "FAILED"), (lost, "FAILED")] {
        db.wait_status(id, status, WAIT);
    }
    db.wait_status(long, "RUNNING", WAIT);
    db.ok(&["cancel", &long.to_string()]);
    db.wait_status(long, "CANCELLED", WAIT);
    // Many finished to a commit: one UPSERT per (job, status) for them.
    let more: Vec<i64> = (0..20)
        .map(|_| db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]))
        .collect();
    for id in &more {
        db.wait_status(*id, "COMPLETED", WAIT);
    }
    wait_for("two ticks of the schedule", WAIT, || {
        db.scalar("SELECT count(*) FROM ScheduleTick")
            .parse::<i64>()
            .is_ok_and(|n| n >= 2)
    });
    stop(w);

    let rollup = db.query(ROLLUP);
    assert_eq!(rollup, db.query(FROM_ROWS));
    let by_key: BTreeMap<(String, String), i64> = rollup
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or_default().to_string();
            ((s(0), s(1)), r[2].as_i64().unwrap_or(-1))
        })
        .collect();
    let n = |job: &str, status: &str| by_key.get(&(job.into(), status.into())).copied();
    assert_eq!(n("demo-known-total", "COMPLETED"), Some(21));
    assert_eq!(n("demo-known-total", "CANCELLED"), Some(2));
    assert_eq!(
        n("demo-multi-phase", "FAILED"),
        Some(2),
        "the failure and the lost run"
    );
    // The hand-inserted run: 42.5 s, in the 60 s bucket, not the 30 s one.
    assert_eq!(
        db.query("SELECT durationSumMs, le30s, le1m FROM JobStat WHERE jobName = 'imported'"),
        db.query("SELECT 42500, 0, 1")
    );
    assert_eq!(db.query(TICKS), db.query(TICKS_FROM_ROWS));
    assert_eq!(
        db.scalar("SELECT n FROM MetricCounter WHERE name = 'log_lines'"),
        db.scalar("SELECT count(*) FROM JobLog")
    );

    // Deleting history (as retention does) leaves the totals as they were.
    db.conn()
        .execute_batch(
            "DELETE FROM JobLog; DELETE FROM JobRun WHERE status = 'COMPLETED'; \
             DELETE FROM ScheduleTick;",
        )
        .expect("delete history");
    assert_eq!(db.query(ROLLUP), rollup);
    assert_ne!(db.query(ROLLUP), db.query(FROM_ROWS));
    assert_ne!(
        db.scalar("SELECT n FROM MetricCounter WHERE name = 'log_lines'"),
        "0"
    );
}

/// `jobmgr serve --metrics-bind 127.0.0.1:0`, with the two addresses it
/// prints. Stopped with SIGTERM on drop.
struct Server {
    child: Child,
    api: http::Api,
    metrics_addr: String,
    log: std::path::PathBuf,
}

impl Server {
    fn start(db: &TestDb, extra: &[&str]) -> Server {
        let log = db.dir.join(format!("serve-{}.log", std::process::id()));
        let mut cmd: Command = db.cmd();
        cmd.env_remove("JOBMGR_TOKEN")
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--metrics-bind",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create serve log"));
        let mut child = cmd.spawn().expect("spawn serve");
        let mut out = BufReader::new(child.stdout.take().expect("serve stdout"));
        let mut line = |prefix: &str| {
            let mut l = String::new();
            let _ = out.read_line(&mut l);
            l.trim_end()
                .strip_prefix(prefix)
                .unwrap_or_else(|| {
                    panic!(
                        "serve printed {l:?}, stderr:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                .to_string()
        };
        let admin = line("jobmgr admin: http://");
        let scrape = line("jobmgr metrics: http://");
        let (addr, tail) = admin.split_once('/').expect("URL has a path");
        let token = tail
            .rsplit_once("token=")
            .expect("token in URL")
            .1
            .to_string();
        Server {
            child,
            api: http::Api {
                addr: addr.to_string(),
                token,
            },
            metrics_addr: scrape.trim_end_matches("/metrics").to_string(),
            log,
        }
    }

    /// Waits until the scrape shows the supervised worker up.
    fn wait_worker_up(&self) {
        let up = poll_until(WAIT, || {
            value(&parse(&self.scrape().text()), "jobmgr_worker_up", &[]) == Some(1.0)
        });
        assert!(
            up,
            "the worker never showed as up:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// `GET /metrics` on the unauthenticated address.
    fn scrape(&self) -> Resp {
        http::request(&self.metrics_addr, "GET", "/metrics", &[], None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && !(common::send_signal(self.child.id(), "TERM")
                && common::exit_code(&mut self.child, Duration::from_secs(20)).is_some())
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses an exposition with `prometheus-parse`, after checking what that
/// lenient parser lets pass: every sample belongs to a family announced
/// by a HELP and a TYPE line before it.
fn parse(text: &str) -> Scrape {
    let mut typed: HashSet<String> = HashSet::new();
    let mut helped: HashSet<String> = HashSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("#"), Some("HELP"), Some(name)) => {
                helped.insert(name.to_string());
            }
            (Some("#"), Some("TYPE"), Some(name)) => {
                assert!(helped.contains(name), "TYPE before HELP: {line}");
                typed.insert(name.to_string());
            }
            _ => {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "sample without a TYPE: {line}");
            }
        }
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("a Prometheus exposition")
}

/// The value of the sample `metric` with exactly `labels`.
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .and_then(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

/// The buckets of the histogram `metric` for `job`, as (le, count).
fn buckets(s: &Scrape, metric: &str, job: &str) -> Vec<(f64, f64)> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && x.labels.get("job") == Some(job))
        .and_then(|x| match &x.value {
            Value::Histogram(b) => Some(b.iter().map(|h| (h.less_than, h.count)).collect()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn metrics_show_known_runs_and_need_the_token_only_on_the_main_address() {
    let db = TestDb::new("metrics-scrape");
    // Type A: 2 completed and 1 failed, run by a worker.
    let a = "demo-multi-phase";
    let ids = [
        db.enqueue(a, &["count=2", "delay_ms=1"]),
        db.enqueue(a, &["count=2", "delay_ms=1"]),
        db.enqueue(a, &["count=3", "delay_ms=1", "fail_at=2"]),
    ];
    let w = db.spawn_worker(&[]);
    for (id, status) in ids.iter().zip(["COMPLETED", "COMPLETED", "FAILED"]) {
        db.wait_status(*id, status, WAIT);
    }
    stop(w);
    // Type B: one queued (no worker runs while the metrics are read).
    let queued = db.enqueue("demo-known-total", &["count=1"]);
    // Known durations, recorded as a user's sqlite3 would: 7.5 s (the 10 s
    // bucket) and 20 min (past the 15 min bucket); and a schedule tick.
    db.conn()
        .execute_batch(
            "INSERT INTO JobRun (jobName, status, createdAt, startedAt, finishedAt, updatedAt) VALUES \
             ('timed', 'COMPLETED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', \
              '2026-01-01T00:00:07.500Z', '2026-01-01T00:00:07.500Z'), \
             ('timed', 'FAILED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', \
              '2026-01-01T00:20:00.000Z', '2026-01-01T00:20:00.000Z'); \
             INSERT INTO ScheduleTick (scheduleName, dueAt, decidedAt, outcome) VALUES \
             ('nightly', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'SKIPPED_MISSED'), \
             ('say \"hi\"', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'ENQUEUED'); \
             INSERT INTO JobRunAttempt (jobRunId, attempt, startedAt, finishedAt, error) \
             SELECT id, 1, createdAt, createdAt, 'boom' FROM JobRun WHERE jobName = 'timed';",
        )
        .expect("insert known rows");
    // A run waiting for the queued one.
    db.ok(&[
        "enqueue",
        "demo-known-total",
        "--after",
        &queued.to_string(),
    ]);

    let server = Server::start(&db, &["--no-worker"]);
    // The main address wants the token, like /api.
    let anonymous = http::request(&server.api.addr, "GET", "/metrics", &[], None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(anonymous.error_code(), "unauthorized");
    let with_token = server.api.get("/metrics");
    assert_eq!(with_token.status, 200, "{}", with_token.text());
    // The metrics address does not, and serves nothing else.
    let scraped = server.scrape();
    assert_eq!(scraped.status, 200, "{}", scraped.text());
    for r in [&with_token, &scraped] {
        let ct = r.header("Content-Type").unwrap_or_default();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    let other = http::request(&server.metrics_addr, "GET", "/api/jobs", &[], None);
    assert_eq!(other.status, 404);
    let post = http::request(&server.metrics_addr, "POST", "/metrics", &[], Some(b""));
    assert_eq!(post.status, 405);

    let s = parse(&scraped.text());
    let finished = |job, status| {
        value(
            &s,
            "jobmgr_runs_finished_total",
            &[("job", job), ("status", status)],
        )
    };
    assert_eq!(finished(a, "COMPLETED"), Some(2.0));
    assert_eq!(finished(a, "FAILED"), Some(1.0));
    assert_eq!(finished("timed", "COMPLETED"), Some(1.0));
    assert_eq!(finished("demo-known-total", "COMPLETED"), None);
    let runs = |job, status| value(&s, "jobmgr_runs", &[("job", job), ("status", status)]);
    assert_eq!(runs("demo-known-total", "QUEUED"), Some(1.0));
    assert_eq!(runs("demo-known-total", "WAITING"), Some(1.0));
    // Two attempts of 'timed' were put aside to be tried again.
    assert_eq!(
        value(&s, "jobmgr_retries_total", &[("job", "timed")]),
        Some(2.0)
    );
    assert_eq!(runs("demo-known-total", "RUNNING"), Some(0.0));
    assert_eq!(runs(a, "QUEUED"), Some(0.0));
    let age = value(
        &s,
        "jobmgr_oldest_queued_age_seconds",
        &[("job", "demo-known-total")],
    )
    .expect("the queued job's age");
    assert!((0.0..600.0).contains(&age), "age {age}");
    assert_eq!(
        value(&s, "jobmgr_oldest_queued_age_seconds", &[("job", a)]),
        Some(0.0)
    );

    // The histogram: the worker's 3 runs are short; the two known ones
    // land in their buckets.
    let h = "jobmgr_run_duration_seconds";
    let timed = buckets(&s, h, "timed");
    let at = |le: f64| timed.iter().find(|(l, _)| *l == le).map(|(_, n)| *n);
    assert_eq!(at(5.0), Some(0.0));
    assert_eq!(at(10.0), Some(1.0));
    assert_eq!(at(900.0), Some(1.0));
    assert_eq!(at(3600.0), Some(2.0));
    assert_eq!(at(f64::INFINITY), Some(2.0));
    assert_eq!(
        value(&s, &format!("{h}_sum"), &[("job", "timed")]),
        Some(1207.5)
    );
    assert_eq!(
        value(&s, &format!("{h}_count"), &[("job", "timed")]),
        Some(2.0)
    );
    let short = buckets(&s, h, a);
    assert_eq!(short.len(), 11, "10 buckets and +Inf: {short:?}");
    assert_eq!(short.last().map(|b| b.1), Some(3.0));
    assert_eq!(value(&s, &format!("{h}_count"), &[("job", a)]), Some(3.0));
    let sum = value(&s, &format!("{h}_sum"), &[("job", a)]).expect("sum");
    assert!(sum > 0.0 && sum < 300.0, "sum {sum}");

    assert_eq!(
        value(
            &s,
            "jobmgr_schedule_ticks_total",
            &[("schedule", "nightly"), ("outcome", "SKIPPED_MISSED")],
        ),
        Some(1.0)
    );
    // prometheus-parse does not read escaped quotes: the text, then.
    assert!(
        scraped.text().contains(
            "jobmgr_schedule_ticks_total{schedule=\"say \\\"hi\\\"\",outcome=\"ENQUEUED\"} 1\n"
        ),
        "the label value is escaped:\n{}",
        scraped.text()
    );
    // The worker stopped: down, with the age of its last heartbeat.
    assert_eq!(value(&s, "jobmgr_worker_up", &[]), Some(0.0));
    assert!(value(&s, "jobmgr_worker_heartbeat_age_seconds", &[]).is_some_and(|v| v >= 0.0));
    let lines: f64 = db
        .scalar("SELECT count(*) FROM JobLog")
        .parse()
        .expect("count");
    assert!(lines > 0.0);
    assert_eq!(value(&s, "jobmgr_log_lines_total", &[]), Some(lines));
    assert_eq!(value(&s, "jobmgr_websocket_clients", &[]), Some(0.0));
    let size = std::fs::metadata(&db.path).expect("db file").len() as f64;
    assert_eq!(value(&s, "jobmgr_database_bytes", &[]), Some(size));
    assert!(value(&s, "jobmgr_wal_bytes", &[]).is_some());
    assert!(value(&s, "jobmgr_disk_free_bytes", &[]).is_some_and(|v| v > 0.0));
    let health = http::request(&server.api.addr, "GET", "/healthz", &[], None).json();
    let version = health["version"]
        .as_str()
        .expect("healthz names the version");
    assert_eq!(
        value(&s, "jobmgr_build_info", &[("version", version)]),
        Some(1.0)
    );
    // The queued run is still there: reading the metrics changed nothing.
    assert_eq!(db.status_of(queued), "QUEUED");
    drop(server);
}

#[test]
fn worker_up_is_1_while_a_worker_runs_and_websocket_clients_are_counted() {
    let db = TestDb::new("metrics-up");
    let server = Server::start(&db, &[]);
    let read = || parse(&server.scrape().text());
    server.wait_worker_up();
    let age = value(&read(), "jobmgr_worker_heartbeat_age_seconds", &[]).expect("age");
    assert!(age < 60.0, "age {age}");
    let mut live = server.api.ws("/ws");
    common::http::next_json(&mut live).expect("snapshot");
    wait_for("the socket counted", WAIT, || {
        value(&read(), "jobmgr_websocket_clients", &[]) == Some(1.0)
    });
}

#[test]
fn an_address_that_cannot_be_bound_is_refused_at_start() {
    let db = TestDb::new("metrics-bad");
    let out = db
        .cmd()
        .env_remove("JOBMGR_TOKEN")
        .args(["serve", "--no-worker", "--bind", "127.0.0.1:0"])
        .args(["--metrics-bind", "not-an-address"])
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("listen on not-an-address"), "{err}");
}

/// The write path's counters, each `(family, labels)`.
const WRITES: [(&str, &[(&str, &str)]); 13] = [
    ("jobmgr_commit_rounds_total", &[]),
    ("jobmgr_commit_requests_total", &[]),
    ("jobmgr_commit_gather_seconds_total", &[]),
    ("jobmgr_commit_seconds_total", &[]),
    ("jobmgr_commit_lock_wait_seconds_total", &[]),
    ("jobmgr_commit_sync_seconds_total", &[]),
    ("jobmgr_commit_answer_seconds_total", &[]),
    ("jobmgr_checkpoints_total", &[("by", "checkpointer")]),
    ("jobmgr_checkpoints_total", &[("by", "fallback")]),
    ("jobmgr_checkpoint_frames_total", &[("by", "checkpointer")]),
    ("jobmgr_checkpoint_frames_total", &[("by", "fallback")]),
    ("jobmgr_checkpoint_seconds_total", &[("by", "checkpointer")]),
    ("jobmgr_checkpoint_seconds_total", &[("by", "fallback")]),
];

#[test]
fn the_group_commit_and_its_checkpoints_are_counted_by_the_server_that_ran_them() {
    let db = TestDb::new("metrics-writes");
    // A type whose runs carry a long text: about a dozen WAL pages an
    // enqueue, so a few dozen wake the checkpointer (1,000 frames).
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[jobs.blob]\ncommand = [\"true\"]\n\n[jobs.blob.parameters.text]\n\
         type = \"string\"\nmax_length = 60000\n",
    )
    .expect("write jobmgr.toml");
    let server = Server::start(&db, &["--no-worker"]);
    let read = || parse(&server.scrape().text());
    let s = read();
    for (name, labels) in WRITES {
        assert_eq!(value(&s, name, labels), Some(0.0), "{name}{labels:?}");
    }

    // 4 clients at once, so that rounds can carry several requests; until
    // the checkpointer has run.
    let body = serde_json::json!({"jobName": "blob", "parameters": {"text": "x".repeat(48_000)}});
    let mut sent = 0.0;
    let checkpointed = poll_until(WAIT, || {
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        let r = server.api.post("/api/jobs", &body);
                        assert_eq!(r.status, 201, "{}", r.text());
                    }
                });
            }
        });
        sent += 40.0;
        let by = [("by", "checkpointer")];
        value(&read(), "jobmgr_checkpoints_total", &by).is_some_and(|n| n > 0.0)
    });
    assert!(
        checkpointed,
        "no checkpoint after {sent} enqueues:\n{}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );

    let s = read();
    let v = |name, labels| value(&s, name, labels).unwrap_or(-1.0);
    assert_eq!(v("jobmgr_commit_requests_total", &[]), sent);
    let rounds = v("jobmgr_commit_rounds_total", &[]);
    assert!((1.0..=sent).contains(&rounds), "{rounds} rounds");
    let commit = v("jobmgr_commit_seconds_total", &[]);
    assert!(commit > 0.0);
    assert!(v("jobmgr_commit_gather_seconds_total", &[]) >= 0.0);
    // The wait for the lock, the COMMIT statement and the answers are
    // parts of the commit's time, and every round synced.
    let (lock, sync, answer) = (
        v("jobmgr_commit_lock_wait_seconds_total", &[]),
        v("jobmgr_commit_sync_seconds_total", &[]),
        v("jobmgr_commit_answer_seconds_total", &[]),
    );
    assert!(
        lock >= 0.0 && sync > 0.0 && answer >= 0.0,
        "{lock} {sync} {answer}"
    );
    assert!(
        lock + sync + answer <= commit,
        "{lock} + {sync} + {answer} > {commit}"
    );
    let by = [("by", "checkpointer")];
    assert!(v("jobmgr_checkpoint_frames_total", &by) > 0.0);
    assert!(v("jobmgr_checkpoint_seconds_total", &by) > 0.0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        sent.to_string(),
        "every request was a run"
    );
}

#[test]
fn the_workers_writer_reports_its_load_with_each_heartbeat() {
    let db = TestDb::new("metrics-writer");
    let server = Server::start(&db, &[]);
    let read = || parse(&server.scrape().text());
    let figures = |s: &Scrape| -> [f64; 5] {
        [
            "busy_seconds",
            "commits",
            "commit_seconds",
            "lock_wait_seconds",
            "sync_seconds",
        ]
        .map(|f| value(s, &format!("jobmgr_worker_writer_{f}_total"), &[]).unwrap_or(-1.0))
    };
    server.wait_worker_up();
    let before = figures(&read());

    // Runs with progress and log lines: the writer claims, writes and
    // finishes them in its commits.
    let n = 200;
    for _ in 0..n {
        let r = server.api.post(
            "/api/jobs",
            &serde_json::json!({"jobName": "demo-quick", "parameters": {"count": 3}}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    wait_for("the runs finished", WAIT, || {
        db.scalar("SELECT count(*) FROM JobRun WHERE status = 'COMPLETED'") == n.to_string()
    });
    // The heartbeat after the last finish carries its commit.
    let last_finish = db.scalar("SELECT max(finishedAt) FROM JobRun");
    wait_for("a heartbeat after the last finish", WAIT, || {
        db.scalar("SELECT heartbeatAt FROM Worker WHERE state = 'RUNNING'") > last_finish
    });
    let s = read();
    let [busy, commits, commit, lock, sync] = figures(&s);
    assert!(
        commits > before[1] && busy > before[0],
        "{before:?} then {:?}",
        figures(&s)
    );
    // Each part is inside the one that holds it.
    assert!(sync > 0.0 && lock >= 0.0, "sync {sync}, lock wait {lock}");
    assert!(lock + sync <= commit, "{lock} + {sync} > {commit}");
    assert!(commit <= busy, "commit {commit} > busy {busy}");

    // The same figures are in the worker's row and in `GET /api/worker`.
    let row = db.query(
        "SELECT writerCommits, writerBusyUs, writerSyncUs FROM Worker WHERE state = 'RUNNING'",
    );
    let status = server.api.get("/api/worker").json();
    let writer = &status["worker"]["writer"];
    let from_api = writer["commits"].as_i64().expect("commits in /api/worker");
    let from_row = row[0][0].as_i64().expect("writerCommits");
    assert!(
        from_api >= commits as i64 && from_row >= commits as i64,
        "scrape {commits}, API {from_api}, row {from_row}"
    );
    assert!(writer["busyUs"].as_i64().is_some_and(|b| b > 0), "{writer}");
    assert!(writer["syncUs"].as_i64().is_some_and(|b| b > 0), "{writer}");
}
