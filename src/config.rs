//! Every default in one place, and the settings shared by the commands.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::runner::Timing;

/// The database used when neither `--db` nor `JOBMGR_DB` is given.
pub const DEFAULT_DB: &str = "jobmgr.db";
/// Where `jobmgr serve` listens when neither `--bind` nor `JOBMGR_BIND` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:8765";
/// How often `jobmgr serve` resolves runs of workers that went silent.
pub const MAINTENANCE_EVERY_MS: u64 = 5_000;
/// How often the worker records that it is alive.
pub const HEARTBEAT_MS: u64 = 10_000;
/// A worker silent for longer than this is stale.
pub const STALE_AFTER_MS: u64 = 30_000;
/// How long a stopping worker lets running jobs finish.
pub const DRAIN_TIMEOUT_SECS: f64 = 60.0;
/// How long a cancelled job gets to notice before it is recorded as interrupted.
pub const CANCEL_GRACE_MS: u64 = 5_000;
/// Jobs a worker runs at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Most concurrent jobs a worker accepts.
pub const MAX_CONCURRENCY: usize = 256;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: PathBuf,
    pub heartbeat_ms: u64,
    pub stale_after_ms: u64,
    pub drain_timeout_secs: f64,
}

impl Settings {
    /// Checks the combination of values.
    pub fn validate(&self) -> Result<()> {
        if self.heartbeat_ms == 0 {
            return Err(Error::Invalid("heartbeat interval must be positive".into()));
        }
        if self.stale_after_ms <= self.heartbeat_ms {
            return Err(Error::Invalid(format!(
                "stale-after ({} ms) must be longer than the heartbeat interval ({} ms)",
                self.stale_after_ms, self.heartbeat_ms
            )));
        }
        if !(self.drain_timeout_secs.is_finite() && self.drain_timeout_secs >= 0.0) {
            return Err(Error::Invalid(
                "drain timeout must be a non-negative number of seconds".into(),
            ));
        }
        Ok(())
    }

    /// The worker's timings.
    pub fn timing(&self) -> Timing {
        Timing {
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            drain_timeout: Duration::from_secs_f64(self.drain_timeout_secs),
            cancel_grace: Duration::from_millis(CANCEL_GRACE_MS),
            idle_poll: Duration::from_millis(1),
            busy_poll: Duration::from_millis(50),
            progress_interval: Duration::from_millis(250),
            max_prefetch: 256,
        }
    }
}
