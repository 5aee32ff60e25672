//! The scenarios that run the real worker: draining runs (alone, behind a
//! backlog, over a large history), enqueue-to-start latency, and logging.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::jobtypes::{noop_request, wall_us};
use super::scenarios::{Ctx, wait_until};
use super::{BenchOptions, Measurement, TempDir, cpu_seconds, percentile};
use crate::error::{Error, Result};
use crate::job::{JobStatus, Trigger};
use crate::manager::EnqueueRequest;
use crate::store::{self, bench as sb};

impl Ctx {
    /// N no-op runs drained by a worker; optionally behind a backlog of
    /// lower-priority runs, in a file with a large finished history, or
    /// beside runs SCHEDULED for later.
    pub(super) fn process(
        &mut self,
        concurrency: usize,
        backlog: usize,
        history: usize,
    ) -> Result<Measurement> {
        self.process_beside(concurrency, backlog, history, 0)
    }

    /// [`Ctx::process`] with `scheduled` runs waiting for a time a year
    /// ahead ("process-scheduled").
    pub(super) fn process_beside(
        &mut self,
        concurrency: usize,
        backlog: usize,
        history: usize,
        scheduled: usize,
    ) -> Result<Measurement> {
        let name = match (backlog, history, scheduled) {
            (0, 0, 0) => "process",
            (0, 0, _) => "process-scheduled",
            (_, 0, _) => "process-backlog",
            _ => "process-history",
        };
        let dir = TempDir::beside(&self.opts.db, name)?;
        let m = self.manager(&dir.db())?;
        if let Some(lines) = self.opts.history_lines.checked_div(history) {
            let lines = lines.max(1);
            sb::generate_history(&mut store::open_connection(&dir.db())?, history, lines)?;
        }
        if scheduled > 0 {
            sb::generate_scheduled(&store::open_connection(&dir.db())?, scheduled)?;
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
                && sb::count_unfinished(&conn, "bench-noop")? == 0
                && sb::count_completed(&conn, "bench-noop")? as usize >= n)
        })?;
        let took = t.elapsed();
        w.stop();
        w.wait()?;
        let mut out = Measurement::new(name, n, concurrency, took)
            .with_cpu(cpu)
            .with_commits(commits);
        if scheduled > 0 {
            out.note = Some(format!("{scheduled} runs SCHEDULED for later"));
        }
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
    pub(super) fn latency(&mut self) -> Result<Vec<Measurement>> {
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
            return Err(Error::Internal(format!(
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

    pub(super) fn logs(&mut self) -> Result<Vec<Measurement>> {
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
}

/// The other process of the `latency` scenario: enqueues `samples` runs at
/// random gaps of 0-50 ms, each stamped with the time just before its commit.
pub fn latency_client(db: &std::path::Path, samples: usize) -> Result<()> {
    let ctx = Ctx::new(&BenchOptions {
        db: db.to_path_buf(),
        n: samples.max(1),
        n_given: Some(samples.max(1)),
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
