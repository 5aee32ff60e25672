//! The writer's stopping sequence: STOPPING, then drain, then cancel, then
//! record what is left as interrupted, then STOPPED.

use std::time::Instant;

use super::{Exit, InFlight, Mode, Writer};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::job::JobStatus;
use crate::store::batch::{self, Batch, FinishRecord};
use crate::worker::WorkerState;

impl Writer {
    /// How a run cut short by the stopping sequence is recorded.
    pub(super) fn interrupted(&self, job_name: &str) -> (JobStatus, Option<String>) {
        let secs = self.timing.drain_timeout.as_secs_f64();
        if self.registry.is_retry_safe(job_name) {
            (
                JobStatus::Queued,
                Some(format!("interrupted: worker stopped after {secs} s drain")),
            )
        } else {
            (
                JobStatus::Cancelled,
                Some(format!(
                    "interrupted: worker stopped and the run did not finish within the {secs} s drain"
                )),
            )
        }
    }

    pub(super) fn begin_stopping(&mut self) -> Result<()> {
        match &mut self.mode {
            Mode::Stopping { drain_deadline, .. } => {
                log::warn!("second stop: cancelling running jobs now");
                *drain_deadline = Instant::now();
                Ok(())
            }
            Mode::Accepting => {
                log::info!(
                    "stopping: draining {} running job(s) for up to {:?}",
                    self.in_flight.len(),
                    self.timing.drain_timeout
                );
                self.mode = Mode::Stopping {
                    drain_deadline: Instant::now() + self.timing.drain_timeout,
                    cancel_deadline: None,
                };
                if !self.set_state(WorkerState::Stopping)? {
                    return self.lost_registration();
                }
                self.release_waiting()
            }
        }
    }

    /// Claimed runs still waiting for an executor go back to the queue.
    fn release_waiting(&mut self) -> Result<()> {
        let mut ids = Vec::new();
        while let Ok(a) = self.undispatch.try_recv() {
            self.in_flight.remove(&a.run.id);
            ids.push(a.run.id);
        }
        if !ids.is_empty() {
            batch::release(&mut self.conn, &self.me, &ids, Timestamp::now())?;
        }
        Ok(())
    }

    pub(super) fn step_stopping(&mut self) -> Result<Option<Exit>> {
        let Mode::Stopping {
            drain_deadline,
            cancel_deadline,
        } = &mut self.mode
        else {
            return Ok(None);
        };
        let now = Instant::now();
        if self.in_flight.is_empty() {
            self.set_state(WorkerState::Stopped)?;
            return Ok(Some(Exit::Drained));
        }
        match cancel_deadline {
            None if now >= *drain_deadline => {
                *cancel_deadline = Some(now + self.timing.cancel_grace);
                for f in self.in_flight.values_mut() {
                    f.interrupted = true;
                    f.shared.cancel();
                }
                Ok(None)
            }
            Some(deadline) if now >= *deadline => {
                self.record_abandoned()?;
                self.set_state(WorkerState::Stopped)?;
                Ok(Some(Exit::Abandoned))
            }
            _ => Ok(None),
        }
    }

    fn record_abandoned(&mut self) -> Result<()> {
        let mut batch = Batch::default();
        let flights: Vec<(i64, InFlight)> = self.in_flight.drain().collect();
        for (_, f) in flights {
            let (status, error) = self.interrupted(&f.job_name);
            batch.finishes.push(FinishRecord {
                progress: f.shared.snapshot(),
                status,
                error,
                error_context: None,
                job_name: f.job_name,
                started: Some(f.started),
            });
        }
        batch::commit(&mut self.conn, &self.me, &batch, Timestamp::now())?;
        Ok(())
    }
}
