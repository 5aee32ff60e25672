//! How the writer reacts to commits by other processes (new runs, cancel
//! and stop requests, this worker declared dead) and to a disk that
//! refuses its writes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{NextDue, Writer};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::batch::{self, Batch, BatchResult};
use crate::store::{self, workers};

impl Writer {
    /// Reacts to commits by other processes: new runs, cancel and stop
    /// requests, and this worker being declared dead.
    pub(super) fn watch_database(&mut self) -> Result<()> {
        let v = store::data_version(&self.conn)?;
        if v == self.data_version {
            self.recheck.missed();
            return Ok(());
        }
        self.data_version = v;
        self.recheck.end();
        self.queue_maybe_nonempty = true;
        self.next_due = NextDue::read(&self.conn)?;
        self.paused = super::limits::Paused::read(&self.conn)?;
        // Another process may have added a waiting run, or ended (cancelled,
        // failed) one that others wait for.
        self.waiting = super::limits::Waiting::read(&self.conn)?.changed();
        if !self.in_flight.is_empty() {
            for id in batch::cancel_requested(&self.conn, self.me.worker_id)? {
                if let Some(f) = self.in_flight.get(&id) {
                    f.shared.cancel();
                }
            }
        }
        let row = workers::get_worker(&self.conn, self.me.worker_id)?;
        match row {
            Some(w) if w.state.is_active() => {
                if w.stop_requested_at.is_some() && self.accepting() {
                    log::info!("stop requested through the database");
                    self.begin_stopping()?;
                }
                Ok(())
            }
            _ => self.lost_registration(),
        }
    }

    pub(super) fn lost_registration(&mut self) -> Result<()> {
        for f in self.in_flight.values() {
            f.shared.cancel();
        }
        Err(Error::Conflict(format!(
            "worker {} was declared dead by another process; exiting without writing more",
            self.me.worker_id
        )))
    }

    /// Commits `batch`; while the disk refuses the write, retries the same
    /// batch (it rolled back whole) with a growing pause, for at most
    /// `write_retry_for`. Meanwhile nothing else is read: the executors'
    /// messages wait in the bounded channel and the jobs wait on it, so a
    /// full disk that is cleaned up in time costs no outcome and no log
    /// line. After that, or when a stop signal arrives meanwhile (the stop
    /// could not be recorded anyway), the error ends the worker, as any
    /// other does.
    pub(super) fn commit_retrying(&mut self, batch: &Batch) -> Result<BatchResult> {
        let (started, mut pause, mut retried) = (Instant::now(), Duration::from_millis(50), false);
        let signals = self.signals.load(Ordering::SeqCst);
        loop {
            match batch::commit(&mut self.conn, &self.me, batch, Timestamp::now()) {
                Ok(r) => {
                    if retried {
                        log::info!("the database accepts writes again");
                    }
                    return Ok(r);
                }
                Err(e)
                    if e.is_refused_write()
                        && started.elapsed() < self.timing.write_retry_for
                        && self.signals.load(Ordering::SeqCst) == signals =>
                {
                    log::warn!("{e}; retrying in {} ms", pause.as_millis());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
