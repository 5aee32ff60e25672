//! The `process-policies` scenario: `process` (N no-op runs drained by
//! the real worker, 1 and 4 executors) in a database where every run
//! policy is in play at once, so the claim pays for all of them: the
//! drained runs are unique-keyed; a paused type has 1,000 queued runs;
//! two types share a group limited to one running run and have 1,000
//! queued runs between them; 1,000 runs wait (WAITING) behind a run that
//! never starts (it is of the paused type). The queued runs of the limited
//! types have a lower priority than the drained ones, like a backlog.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::jobtypes::{noop_request, policy_registry};
use super::scenarios::{Ctx, wait_until};
use super::{Measurement, TempDir, cpu_seconds};
use crate::error::Result;
use crate::manager::Actor;
use crate::store::{self, bench as sb};

/// Queued runs of the paused type, queued runs of the limited group, and
/// WAITING runs present while the drain is measured.
const PAUSED: usize = 1_000;
const LIMITED: usize = 1_000;
const WAITING: usize = 1_000;

impl Ctx {
    /// [`Ctx::process`] with every policy present (see the module header).
    pub(super) fn process_policies(&mut self, concurrency: usize) -> Result<Measurement> {
        let name = "process-policies";
        let dir = TempDir::beside(&self.opts.db, name)?;
        let registry = policy_registry(&self.done, &self.started.0);
        let m = self.manager_with(&dir.db(), registry.clone())?;
        let by = Actor::cli();
        m.set_paused("bench-paused", true, &by)?;
        let first = m.enqueue_many(&vec![noop_request("bench-paused"); PAUSED])?[0];
        let limited: Vec<_> = (0..LIMITED)
            .map(|i| {
                noop_request(if i % 2 == 0 {
                    "bench-limited-a"
                } else {
                    "bench-limited-b"
                })
            })
            .collect();
        m.enqueue_many(&limited)?;
        for _ in 0..WAITING {
            m.enqueue_after(&noop_request("bench-waiting"), &[first], &by)?;
        }
        let mut target = noop_request("bench-noop");
        target.priority = 10;
        m.enqueue_many(&vec![target; self.opts.n])?;
        let conn = store::open_connection(&dir.db())?;
        sb::key_runs(&conn, "bench-noop")?;
        sb::checkpoint(&conn)?;
        self.done.store(0, Ordering::Relaxed);
        let (t, cpu, commits) = (Instant::now(), cpu_seconds(), store::commits());
        let w = self.start_worker_with(&dir.db(), concurrency, registry)?;
        let n = self.opts.n;
        wait_until(Duration::from_secs(3600), || {
            Ok(self.done.load(Ordering::Relaxed) >= n
                && sb::count_unfinished(&conn, "bench-noop")? == 0
                && sb::count_completed(&conn, "bench-noop")? as usize >= n)
        })?;
        let took = t.elapsed();
        w.stop();
        w.wait()?;
        let limited_done = sb::count_completed(&conn, "bench-limited-a")?
            + sb::count_completed(&conn, "bench-limited-b")?;
        // Neither may have run: they show that the pause and the wait held.
        let paused_done = sb::count_completed(&conn, "bench-paused")?;
        let waiting_done = sb::count_completed(&conn, "bench-waiting")?;
        let mut out = Measurement::new(name, n, concurrency, took)
            .with_cpu(cpu)
            .with_commits(commits);
        out.note = Some(format!(
            "unique keys; {PAUSED} queued paused ({paused_done} ran), {LIMITED} queued in a \
             group of 1 ({limited_done} ran), {WAITING} waiting ({waiting_done} ran)"
        ));
        Ok(out)
    }
}
