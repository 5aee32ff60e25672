//! One turn of the writer's loop: what the next commit carries (progress,
//! heartbeat, due and waiting runs, claims under the limits), and what the
//! writer does with a commit's result (runs claimed, fenced, re-read due
//! times).

use std::time::Instant;

use super::due::NextDue;
use super::{InFlight, Writer, limits};
use crate::clock::Timestamp;
use crate::context::RunShared;
use crate::error::Result;
use crate::runner::executor::Assignment;
use crate::store::batch::{Batch, ResolveWaiting};

impl Writer {
    pub(super) fn plan(&mut self, batch: &mut Batch, nudged: bool, fast: usize) {
        let finished = batch.finishes.len();
        if finished > 0 {
            // Claim ahead only while runs are short: a long run claimed
            // early would sit RUNNING without running.
            self.prefetch = if fast == finished {
                (self.concurrency * 4 + fast * 2).min(self.timing.max_prefetch)
            } else {
                0
            };
        }
        if nudged || self.last_progress.elapsed() >= self.timing.progress_interval {
            self.last_progress = Instant::now();
            for f in self.in_flight.values_mut() {
                let fp = f.shared.fingerprint();
                if fp != f.written {
                    f.written = fp;
                    batch.progress.push(f.shared.snapshot());
                }
            }
        }
        self.time_out_overdue();
        if self.last_heartbeat.elapsed() >= self.timing.heartbeat {
            self.last_heartbeat = Instant::now();
            batch.heartbeat = Some(self.load);
        }
        batch.resolve_waiting = self.waiting.due(finished > 0);
        if batch.resolve_waiting != ResolveWaiting::No {
            self.queue_maybe_nonempty = true;
        }
        if self.accepting() && self.next_due.is_due(Timestamp::now()) {
            batch.queue_due = true;
            self.queue_maybe_nonempty = true;
        }
        if self.accepting() && self.queue_maybe_nonempty {
            batch.claim = self.free_slots();
            batch.limits = self.limits();
        }
    }

    pub(super) fn commit(&mut self, batch: Batch) -> Result<()> {
        let asked = batch.claim;
        let result = self.commit_retrying(&batch)?;
        self.load.add_commit(result.took);
        if batch.queue_due {
            self.next_due.set(result.next_due);
        }
        if !batch.retries.is_empty() {
            // A retry may now be the earliest run due.
            self.next_due = NextDue::read(&self.conn)?;
        }
        if batch.resolve_waiting != ResolveWaiting::No {
            self.waiting = limits::Waiting::read(&self.conn)?;
        }
        if let Some(m) = self.mark.as_mut() {
            m.committed(result.claimed.iter().map(|r| r.id).max());
        }
        if !result.still_registered {
            return self.lost_registration();
        }
        if asked > 0 && result.claimed.len() < asked {
            self.queue_maybe_nonempty = false;
        }
        for id in result.fenced {
            if let Some(f) = self.in_flight.get(&id) {
                log::warn!("run {id} is no longer owned by this worker; cancelling it");
                f.shared.cancel();
            }
        }
        for run in result.claimed {
            let shared = RunShared::new(run.id);
            self.in_flight.insert(
                run.id,
                InFlight {
                    shared: shared.clone(),
                    job_name: run.job_name.clone(),
                    started: result.at,
                    attempt: run.attempt,
                    deadline: self
                        .registry
                        .policy(&run.job_name)
                        .timeout
                        .map(|t| Instant::now() + t),
                    written: shared.fingerprint(),
                    interrupted: false,
                },
            );
            // The executors hold the receiver; they cannot be gone while
            // the writer runs, and the channel is unbounded.
            let _ = self.dispatch.send(Assignment { run, shared });
        }
        // After the claimed runs are on their way: a fallback checkpoint
        // here delays only the next commit.
        if let Some(c) = &self.checkpoints {
            c.committed(&self.conn);
        }
        Ok(())
    }
}
