//! `process-real`: real runs through a real `jobmgr worker` child process,
//! as a user runs them. Each run (`demo-quick`) declares a total, counts
//! its item and writes two log lines with a JSON context, so the figure
//! carries what `process` leaves out: the job API's messages, the log
//! lines' rows and the progress written with each finish. Runs per second,
//! the child's CPU per run, and its commits (from the high-water mark the
//! worker keeps in its lock file, since the child's commit counter is not
//! this process's).

use std::time::Instant;

use serde_json::{Map, Value};

use super::footprint::{PATIENCE, WorkerChild, completed};
use super::scenarios::{Ctx, wait_until};
use super::{Measurement, TempDir, proc_cpu_seconds, proc_status_kb, thread_cpu_seconds};
use crate::error::Result;
use crate::job::Trigger;
use crate::manager::EnqueueRequest;
use crate::runner::{lock_path, mark};
use crate::worker::WorkerState;

/// The job type drained: a built-in one, so that any `jobmgr worker` has it.
const JOB: &str = "demo-quick";

impl Ctx {
    /// N `demo-quick` runs drained by a `jobmgr worker --concurrency
    /// <concurrency>` child. The worker is started and idle first; the
    /// clock starts when the runs are committed, in one transaction.
    pub(super) fn process_real(&mut self, concurrency: usize) -> Result<Measurement> {
        let dir = TempDir::beside(&self.opts.db, "process-real")?;
        let m = self.manager(&dir.db())?;
        let mut worker = WorkerChild::start(&dir.db(), concurrency)?;
        wait_until(PATIENCE, || {
            worker.check_alive()?;
            let w = m.worker_status()?.worker;
            Ok(w.is_some_and(|w| w.state == WorkerState::Running))
        })?;
        let n = self.opts.n;
        let req = EnqueueRequest {
            job_name: JOB.into(),
            parameters: Map::from_iter([("count".to_string(), Value::from(1))]),
            priority: 0,
            trigger: Trigger::Api,
        };
        m.enqueue_many(&vec![req; n])?;
        let (pid, lock) = (worker.pid(), lock_path(&dir.db()));
        let commits = || mark::read(&lock).map_or(0, |m| m.commits);
        let threads = thread_cpu_seconds(pid);
        let (t, cpu, before) = (Instant::now(), proc_cpu_seconds(Some(pid)), commits());
        wait_until(PATIENCE, || {
            worker.check_alive()?;
            Ok(completed(&m)? >= n as i64)
        })?;
        let took = t.elapsed();
        let cpu = proc_cpu_seconds(Some(pid)) - cpu;
        let threads_after = thread_cpu_seconds(pid);
        // The writer commits every run: whatever the concurrency, the
        // rate cannot pass one run per writer's CPU per run.
        let spent = |name: &str| {
            threads_after.get(name).copied().unwrap_or(0.0)
                - threads.get(name).copied().unwrap_or(0.0)
        };
        let (writer, executors) = (spent("writer"), spent("executor"));
        let mut out = Measurement::new("process-real", n, concurrency, took);
        out.maxrss_kb = proc_status_kb(Some(pid), "VmHWM:");
        out.cpu_us = Some(cpu * 1e6 / n as f64);
        let commits = commits().saturating_sub(before);
        if commits > 0 {
            out.per_commit = Some(n as f64 / commits as f64);
        }
        out.note = Some(format!(
            "`worker` child draining {n} {JOB} runs (a total, progress, 2 log lines with \
             context each); rss is the child's peak; its writer thread {:.1} µs per run (busy \
             {:.0} % of the time: {}), its executors {:.1} µs",
            writer * 1e6 / n as f64,
            writer * 100.0 / took.as_secs_f64(),
            // CPU time comes in 10 ms ticks: a short drain may show none.
            if writer > 0.0 {
                format!("at most {:.0} runs/s at any concurrency", n as f64 / writer)
            } else {
                "too short to tell its ceiling".to_string()
            },
            executors * 1e6 / n as f64,
        ));
        Ok(out)
    }
}
