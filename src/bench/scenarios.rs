//! The bench scenarios. Each builds its own database, measures one thing
//! through the public Rust API and the real worker, and returns figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Map, Value};

use super::{BenchOptions, Measurement, TempDir, cpu_seconds, percentile};
use crate::app::worker::{RunningWorker, start_worker};
use crate::config::Settings;
use crate::context::{JobContext, RunInfo, RunShared};
use crate::error::{Error, Result};
use crate::job::{JobStatus, LogLevel, Trigger};
use crate::jobs::builtin_registry;
use crate::manager::{EnqueueRequest, Manager};
use crate::registry::{JobType, ParamKind, ParamSpec, Registry};
use crate::runner::WorkerOptions;
use crate::store::{self, Store, bench as sb};

/// Rows written one per transaction by the raw ceiling (each is an fsync).
const RAW_SINGLE_MAX: usize = 10_000;
/// Single enqueues measured (each is acknowledged before the next).
const SINGLE_MAX: usize = 10_000;

/// A latency run's id and how many milliseconds after its enqueue it began.
type Started = (i64, f64);

/// Wall-clock microseconds: the one clock both processes of `latency` share.
fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The other process of the `latency` scenario: enqueues `samples` runs at
/// random gaps of 0-50 ms, each stamped with the time just before its commit.
pub fn latency_client(db: &std::path::Path, samples: usize) -> Result<()> {
    let ctx = Ctx::new(&BenchOptions {
        db: db.to_path_buf(),
        n: samples.max(1),
        backlog: 0,
        history_lines: 0,
    })?;
    let m = ctx.manager(db)?;
    let mut seed = 0x2545_f491_u64;
    for _ in 0..samples {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        thread::sleep(Duration::from_millis((seed >> 33) % 50));
        let mut req = noop_request("bench-latency");
        req.parameters
            .insert("t0_us".into(), Value::from(wall_us()));
        m.enqueue_many(&[req])?;
    }
    Ok(())
}

/// State shared by the scenarios of one invocation.
pub struct Ctx {
    pub(super) opts: BenchOptions,
    done: Arc<AtomicUsize>,
    started: (Sender<Started>, Receiver<Started>),
    raw_single: Option<f64>,
    raw_batch: Option<f64>,
}

impl Ctx {
    /// A context for `opts`.
    pub fn new(opts: &BenchOptions) -> Result<Ctx> {
        if opts.n == 0 {
            return Err(Error::Invalid("--n must be at least 1".into()));
        }
        Ok(Ctx {
            opts: opts.clone(),
            done: Arc::new(AtomicUsize::new(0)),
            started: unbounded(),
            raw_single: None,
            raw_batch: None,
        })
    }

    /// Runs one scenario by name.
    pub fn run(&mut self, name: &str) -> Result<Vec<Measurement>> {
        match name {
            "raw" => self.raw(),
            "enqueue" => self.enqueue(),
            "enqueue-concurrent" => self.enqueue_concurrent(),
            "enqueue-bulk" => self.enqueue_bulk(),
            "process" => Ok(vec![self.process(1, 0, 0)?, self.process(4, 0, 0)?]),
            "process-backlog" => Ok(vec![self.process(4, self.opts.backlog, 0)?]),
            "process-history" => Ok(vec![self.process(4, 0, self.opts.backlog)?]),
            "latency" => self.latency(),
            "logs" => self.logs(),
            "progress" => self.progress(),
            "ws" => Ok(vec![self.ws(1)?, self.ws(100)?]),
            "api" => self.api(),
            "footprint" => self.footprint(),
            "schedules" => self.schedules(),
            other => Err(Error::Invalid(format!("unknown scenario '{other}'"))),
        }
    }

    pub(super) fn registry(&self) -> Arc<Registry> {
        let mut r = builtin_registry();
        let done = self.done.clone();
        r.register(simple("bench-noop", move |_| {
            done.fetch_add(1, Ordering::Relaxed);
        }));
        r.register(simple("bench-backlog", |_| {}));
        let tx = self.started.0.clone();
        r.register(JobType {
            name: "bench-latency".into(),
            description: "Benchmark: reports how long after `t0_us` (wall clock) it started."
                .into(),
            params: vec![ParamSpec::new("t0_us", ParamKind::Integer).default(0)],
            retry_safe: true,
            handler: Arc::new(move |ctx| {
                let t0 = ctx.param_i64("t0_us")?;
                let ms = (wall_us() - t0) as f64 / 1000.0;
                let _ = tx.send((ctx.run_id(), ms));
                Ok(())
            }),
        });
        r.register(JobType {
            name: "bench-logs".into(),
            description: "Benchmark: formats `lines` messages and logs them when `log` is set."
                .into(),
            params: vec![
                ParamSpec::new("lines", ParamKind::Integer).default(0),
                ParamSpec::new("log", ParamKind::Boolean).default(true),
            ],
            retry_safe: true,
            handler: Arc::new(|ctx| {
                let n = ctx.param_i64("lines")?;
                let log = ctx.params().get("log").and_then(Value::as_bool) == Some(true);
                let mut sink = 0usize;
                for i in 0..n {
                    let msg = format!("processed item {i} of the benchmark workload");
                    if log {
                        ctx.log_with(LogLevel::Info, &msg, serde_json::json!({"i": i}));
                    } else {
                        sink += std::hint::black_box(msg).len();
                    }
                    ctx.inc();
                }
                std::hint::black_box(sink);
                Ok(())
            }),
        });
        Arc::new(r)
    }

    pub(super) fn manager(&self, db: &std::path::Path) -> Result<Manager> {
        Ok(Manager::new(
            Store::open(db)?,
            self.registry(),
            30_000,
            60_000,
        ))
    }

    fn start_worker(&self, db: &std::path::Path, concurrency: usize) -> Result<RunningWorker> {
        let settings = Settings {
            db: db.to_path_buf(),
            config: None,
            heartbeat_ms: crate::config::HEARTBEAT_MS,
            stale_after_ms: crate::config::STALE_AFTER_MS,
            drain_timeout_secs: 5.0,
        };
        let opts = WorkerOptions {
            db: db.to_path_buf(),
            concurrency,
            timing: settings.timing(),
        };
        start_worker(&opts, self.registry(), false)
    }

    fn raw(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "raw")?;
        let mut conn = store::open_connection(&dir.db())?;
        sb::create_raw_table(&conn)?;
        let single = self.opts.n.min(RAW_SINGLE_MAX);
        let t = Instant::now();
        sb::raw_insert(&mut conn, single, 1)?;
        let a = Measurement::new("raw-1-per-tx", single, 1, t.elapsed());
        let t = Instant::now();
        sb::raw_insert(&mut conn, self.opts.n, 1000)?;
        let b = Measurement::new("raw-1000-per-tx", self.opts.n, 1, t.elapsed());
        self.raw_single = Some(a.rate);
        self.raw_batch = Some(b.rate);
        Ok(vec![a, b])
    }

    fn ensure_raw(&mut self) -> Result<()> {
        if self.raw_single.is_none() {
            self.raw()?;
        }
        Ok(())
    }

    fn ratio(&self, rate: f64, batch: bool) -> Option<f64> {
        let base = if batch {
            self.raw_batch
        } else {
            self.raw_single
        }?;
        (base > 0.0).then(|| rate / base)
    }

    fn enqueue(&mut self) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let dir = TempDir::beside(&self.opts.db, "enqueue")?;
        let m = self.manager(&dir.db())?;
        let n = self.opts.n.min(SINGLE_MAX);
        let req = noop_request("bench-noop");
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        for _ in 0..n {
            m.enqueue_many(std::slice::from_ref(&req))?;
        }
        let mut out = Measurement::new("enqueue", n, 1, t.elapsed())
            .with_cpu(cpu)
            .with_commits(commits);
        out.raw_ratio = self.ratio(out.rate, false);
        Ok(vec![out])
    }

    fn enqueue_concurrent(&mut self) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let dir = TempDir::beside(&self.opts.db, "enqueue-concurrent")?;
        let m = self.manager(&dir.db())?;
        let threads = 8;
        let per = self.opts.n.min(SINGLE_MAX) / threads;
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || -> Result<()> {
                    let req = noop_request("bench-noop");
                    for _ in 0..per {
                        m.enqueue_many(std::slice::from_ref(&req))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| Error::Conflict("enqueue thread panicked".into()))??;
        }
        let mut out = Measurement::new("enqueue-concurrent", per * threads, threads, t.elapsed())
            .with_cpu(cpu)
            .with_commits(commits);
        out.raw_ratio = self.ratio(out.rate, false);
        Ok(vec![out])
    }

    fn enqueue_bulk(&mut self) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let dir = TempDir::beside(&self.opts.db, "enqueue-bulk")?;
        let m = self.manager(&dir.db())?;
        let reqs = vec![noop_request("bench-noop"); self.opts.n];
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        m.enqueue_many(&reqs)?;
        let mut out = Measurement::new("enqueue-bulk", self.opts.n, 1, t.elapsed())
            .with_cpu(cpu)
            .with_commits(commits);
        out.raw_ratio = self.ratio(out.rate, true);
        Ok(vec![out])
    }

    /// N no-op runs drained by a worker; optionally behind a backlog of
    /// lower-priority runs, or in a file with a large finished history.
    fn process(
        &mut self,
        concurrency: usize,
        backlog: usize,
        history: usize,
    ) -> Result<Measurement> {
        let name = match (backlog, history) {
            (0, 0) => "process",
            (_, 0) => "process-backlog",
            _ => "process-history",
        };
        let dir = TempDir::beside(&self.opts.db, name)?;
        let m = self.manager(&dir.db())?;
        if let Some(lines) = self.opts.history_lines.checked_div(history) {
            let lines = lines.max(1);
            sb::generate_history(&mut store::open_connection(&dir.db())?, history, lines)?;
        }
        for chunk in (0..backlog).collect::<Vec<_>>().chunks(100_000) {
            m.enqueue_many(&vec![noop_request("bench-backlog"); chunk.len()])?;
        }
        let mut target = noop_request("bench-noop");
        target.priority = 10;
        m.enqueue_many(&vec![target; self.opts.n])?;
        sb::checkpoint(&store::open_connection(&dir.db())?)?;
        self.done.store(0, Ordering::Relaxed);
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        let w = self.start_worker(&dir.db(), concurrency)?;
        let conn = store::open_connection(&dir.db())?;
        let n = self.opts.n;
        wait_until(Duration::from_secs(3600), || {
            Ok(self.done.load(Ordering::Relaxed) >= n
                && sb::count_completed(&conn, "bench-noop")? as usize >= n)
        })?;
        let took = t.elapsed();
        w.stop();
        w.wait()?;
        let mut out = Measurement::new(name, n, concurrency, took)
            .with_cpu(cpu)
            .with_commits(commits);
        if backlog + history > 0 {
            out.note = Some(format!(
                "{} runs {}",
                backlog + history,
                if backlog > 0 {
                    "queued behind"
                } else {
                    "of history"
                }
            ));
        }
        Ok(out)
    }

    /// An idle worker in this process; another process enqueues runs one
    /// at a time; each run's handler measures enqueue-to-start.
    fn latency(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "latency")?;
        self.manager(&dir.db())?;
        let w = self.start_worker(&dir.db(), 4)?;
        let samples = self.opts.n.clamp(50, 500);
        let exe = super::own_binary()?;
        let mut child = std::process::Command::new(exe)
            .arg("--db")
            .arg(dir.db())
            .args(["bench", "--latency-client", "--n", &samples.to_string()])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(Error::io("start latency client", &dir.0))?;
        let t = Instant::now();
        let mut lat = Vec::with_capacity(samples);
        while lat.len() < samples {
            match self.started.1.recv_timeout(Duration::from_secs(10)) {
                Ok((_, ms)) => lat.push(ms),
                Err(_) => break,
            }
        }
        let took = t.elapsed();
        let _ = child.wait();
        w.stop();
        w.wait()?;
        if lat.len() < samples {
            return Err(Error::Conflict(format!(
                "only {} of {samples} latency runs started",
                lat.len()
            )));
        }
        lat.sort_by(f64::total_cmp);
        let mut out = Measurement::new("latency", samples, 4, took);
        out.lat_p50_ms = percentile(&lat, 50.0);
        out.lat_p95_ms = percentile(&lat, 95.0);
        out.lat_p99_ms = percentile(&lat, 99.0);
        out.note = Some("enqueue (another process) to start, idle worker".into());
        Ok(vec![out])
    }

    fn logs(&mut self) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let dir = TempDir::beside(&self.opts.db, "logs")?;
        let m = self.manager(&dir.db())?;
        let w = self.start_worker(&dir.db(), 1)?;
        let run = |log: bool| -> Result<(Duration, u64)> {
            let mut params = Map::new();
            params.insert("lines".into(), Value::from(self.opts.n as i64));
            params.insert("log".into(), Value::from(log));
            let req = EnqueueRequest {
                job_name: "bench-logs".into(),
                parameters: params,
                priority: 0,
                trigger: Trigger::Api,
            };
            let id = m.enqueue_many(&[req])?[0];
            let (t, commits) = (Instant::now(), store::commits());
            wait_until(Duration::from_secs(3600), || {
                Ok(m.get(id)?.status == JobStatus::Completed)
            })?;
            Ok((t.elapsed(), commits))
        };
        let (without, _) = run(false)?;
        let (with, commits) = run(true)?;
        w.stop();
        w.wait()?;
        let mut out = Measurement::new("logs", self.opts.n, 1, with).with_commits(commits);
        out.raw_ratio = self.ratio(out.rate, true);
        out.note = Some(format!(
            "same job without logging: {:.3} s",
            without.as_secs_f64()
        ));
        Ok(vec![out])
    }

    fn progress(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "progress")?;
        let store = Store::open(&dir.db())?;
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let shared = RunShared::new(1);
        let ctx = JobContext::new(
            RunInfo {
                id: 1,
                job_name: "bench".into(),
                attempt: 1,
                parameters: Map::new(),
                worker_id: None,
            },
            shared.clone(),
            tx,
            store,
        );
        let n = self.opts.n.max(10_000_000);
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(&ctx).inc();
        }
        let took = t.elapsed();
        let mut out = Measurement::new("progress", n, 1, took);
        out.note = Some(format!(
            "{:.2} ns per increment (fingerprint {:?})",
            took.as_nanos() as f64 / n as f64,
            shared.fingerprint().0
        ));
        Ok(vec![out])
    }
}

fn simple(name: &str, f: impl Fn(&JobContext) + Send + Sync + 'static) -> JobType {
    JobType {
        name: name.into(),
        description: format!("Benchmark job type {name}."),
        params: vec![],
        retry_safe: true,
        handler: Arc::new(move |ctx| {
            f(ctx);
            Ok(())
        }),
    }
}

pub(super) fn noop_request(name: &str) -> EnqueueRequest {
    EnqueueRequest {
        job_name: name.into(),
        parameters: Map::new(),
        priority: 0,
        trigger: Trigger::Api,
    }
}

pub(super) fn wait_until(within: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + within;
    while !cond()? {
        if Instant::now() > deadline {
            return Err(Error::Conflict("benchmark timed out".into()));
        }
        thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
