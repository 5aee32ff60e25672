//! The `footprint` scenario: what the processes a user runs cost. Real
//! `jobmgr serve` and `jobmgr worker` children on the scenario's database:
//! how soon serve answers after it is started, the resident memory of each
//! when idle, the worker's peak while it drains a queue, and the size of
//! the binary. Figures come from the children's `/proc` entries, so the
//! bench process's own memory plays no part.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::scenarios::{Ctx, wait_until};
use super::web::ServeChild;
use super::{Measurement, TempDir, own_binary, percentile, proc_cpu_seconds, proc_status_kb};
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::manager::{EnqueueRequest, Manager};
use crate::worker::WorkerState;

/// Starts of `serve` timed for `serve-start`.
const STARTS: usize = 5;
/// Jobs the worker child runs at once, as in `process`.
const CONCURRENCY: usize = 4;
/// How long a child is left alone before its idle memory is read: its
/// threads have started and its first requests or heartbeat are done.
const SETTLE: Duration = Duration::from_secs(1);
/// The longest the worker may take to register or to drain the queue.
pub(super) const PATIENCE: Duration = Duration::from_secs(600);

impl Ctx {
    pub(super) fn footprint(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "footprint")?;
        // Migrated first: the starts below are restarts, as a user's are.
        let m = self.manager(&dir.db())?;
        let mut out = vec![serve_start(&dir.db())?, serve_idle(&dir.db())?];
        let mut worker = WorkerChild::start(&dir.db(), CONCURRENCY)?;
        wait_until(PATIENCE, || {
            worker.check_alive()?;
            let w = m.worker_status()?.worker;
            Ok(w.is_some_and(|w| w.state == WorkerState::Running))
        })?;
        thread::sleep(SETTLE);
        out.push(worker.idle()?);
        out.push(worker.drain(&m, self.opts.n)?);
        out.push(binary()?);
        Ok(out)
    }
}

/// Milliseconds from starting `jobmgr serve` to its first answered request,
/// over several starts.
fn serve_start(db: &Path) -> Result<Measurement> {
    let (mut ms, mut peak_kb) = (Vec::with_capacity(STARTS), 0);
    let t = Instant::now();
    for _ in 0..STARTS {
        let started = Instant::now();
        let serve = ServeChild::start(db)?;
        answered(&serve, "/healthz")?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        peak_kb = peak_kb.max(proc_status_kb(Some(serve.pid()), "VmHWM:"));
    }
    ms.sort_by(f64::total_cmp);
    let mut out = Measurement::new("serve-start", STARTS, 1, t.elapsed());
    out.lat_p50_ms = percentile(&ms, 50.0);
    out.lat_p95_ms = percentile(&ms, 95.0);
    out.lat_p99_ms = percentile(&ms, 99.0);
    out.maxrss_kb = peak_kb;
    out.note = Some("start of `serve` to its first answer".into());
    Ok(out)
}

/// `serve` after it has served the admin page, the statistics and the
/// history once.
fn serve_idle(db: &Path) -> Result<Measurement> {
    let serve = ServeChild::start(db)?;
    for path in ["/admin/jobs", "/api/stats", "/api/jobs"] {
        answered(&serve, path)?;
    }
    thread::sleep(SETTLE);
    let mut out = child_figure("serve-idle", 0, serve.pid(), Duration::ZERO);
    out.note = Some(format!(
        "`serve --no-worker`, idle: {} KB resident",
        out.rss_kb.unwrap_or(0)
    ));
    Ok(out)
}

fn answered(serve: &ServeChild, path: &str) -> Result<()> {
    match serve.get(path)? {
        (200, _) => Ok(()),
        (status, _) => Err(Error::Internal(format!("GET {path} answered {status}"))),
    }
}

/// The size of this binary.
fn binary() -> Result<Measurement> {
    let exe = own_binary()?;
    let bytes = std::fs::metadata(&exe)
        .map_err(Error::io("read binary size", &exe))?
        .len();
    let mut out = Measurement::new("binary", 1, 0, Duration::ZERO);
    out.maxrss_kb = 0;
    out.size_kb = Some(bytes / 1024);
    out.note = Some(format!("{}: {} KB", exe.display(), bytes / 1024));
    Ok(out)
}

/// A figure about child process `pid`: its current and peak resident
/// memory (the peak in `maxrss_kb`, like every other row's).
fn child_figure(mode: &str, n: usize, pid: u32, took: Duration) -> Measurement {
    let mut out = Measurement::new(mode, n, 1, took);
    out.maxrss_kb = proc_status_kb(Some(pid), "VmHWM:");
    out.rss_kb = Some(proc_status_kb(Some(pid), "VmRSS:"));
    out
}

/// A `jobmgr worker` child, killed on drop.
pub(super) struct WorkerChild {
    child: Child,
}

impl WorkerChild {
    /// Starts `jobmgr worker --concurrency N` on `db`.
    pub(super) fn start(db: &Path, concurrency: usize) -> Result<WorkerChild> {
        let exe = own_binary()?;
        let child = Command::new(exe)
            .arg("--db")
            .arg(db)
            .args(["worker", "--concurrency", &concurrency.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::io("start worker", db))?;
        Ok(WorkerChild { child })
    }

    /// The child's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails at once when the worker has exited, instead of waiting out
    /// the patience for a figure that will never come.
    pub(super) fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Internal(format!(
                "the bench's worker exited ({status})"
            ))),
            _ => Ok(()),
        }
    }

    fn idle(&self) -> Result<Measurement> {
        let mut out = child_figure("worker-idle", 0, self.child.id(), Duration::ZERO);
        out.workers = CONCURRENCY;
        out.note = Some(format!(
            "`worker`, idle: {} KB resident",
            out.rss_kb.unwrap_or(0)
        ));
        Ok(out)
    }

    /// Enqueues `n` demo runs (one item and its log lines each) and waits
    /// until the worker has completed them all; its peak memory is then
    /// the peak while draining.
    fn drain(&mut self, m: &Manager, n: usize) -> Result<Measurement> {
        let pid = self.child.id();
        let mut parameters = Map::new();
        parameters.insert("count".into(), Value::from(1));
        parameters.insert("delay_ms".into(), Value::from(0));
        let req = EnqueueRequest {
            job_name: "demo-known-total".into(),
            parameters,
            priority: 0,
            trigger: Trigger::Api,
        };
        m.enqueue_many(&vec![req; n])?;
        let (t, cpu) = (Instant::now(), proc_cpu_seconds(Some(pid)));
        wait_until(PATIENCE, || {
            self.check_alive()?;
            Ok(completed(m)? >= n as i64)
        })?;
        let took = t.elapsed();
        let mut out = child_figure("worker-process", n, pid, took);
        out.workers = CONCURRENCY;
        if n > 0 {
            out.cpu_us = Some((proc_cpu_seconds(Some(pid)) - cpu) * 1e6 / n as f64);
        }
        out.note = Some(format!(
            "`worker` draining {n} demo runs: peak {} KB resident",
            out.maxrss_kb
        ));
        Ok(out)
    }
}

impl Drop for WorkerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs COMPLETED in all, from the run counters.
pub(super) fn completed(m: &Manager) -> Result<i64> {
    Ok(m.counts()?
        .by_status
        .get("COMPLETED")
        .and_then(Value::as_i64)
        .unwrap_or(0))
}
