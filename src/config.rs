//! Every default in one place, and the settings shared by the commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The worker writer's timings, from the settings ([`Settings::timing`]).
#[derive(Debug, Clone)]
pub struct Timing {
    pub heartbeat: Duration,
    pub drain_timeout: Duration,
    pub cancel_grace: Duration,
    /// How often an idle worker looks for new runs.
    pub idle_poll: Duration,
    /// How often a busy worker looks for cancel and stop requests.
    pub busy_poll: Duration,
    pub progress_interval: Duration,
    /// Most runs claimed ahead of free executors when runs are short.
    pub max_prefetch: usize,
    /// How long a batch the disk refuses (full, an I/O error, locked) is
    /// retried before the worker gives up: the stale-after time, within
    /// which the worker's registration still holds.
    pub write_retry_for: Duration,
}

/// The database used when neither `--db` nor `JOBMGR_DB` is given.
pub const DEFAULT_DB: &str = "jobmgr.db";
/// The web server's token file beside the database, `<db>.token` (a
/// backup must never land on it, so the engine knows it too).
pub fn token_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

/// Where `jobmgr serve` listens when neither `--bind` nor `JOBMGR_BIND` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:8765";
/// Seconds a web client may leave the server's writes unread, or its
/// connection silent (nginx: send_timeout 60, keepalive_timeout 75).
pub const CLIENT_TIMEOUT_SECS: u64 = 60;
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

/// The job-type file looked for beside the database.
pub const CONFIG_FILE_NAME: &str = "jobmgr.toml";
/// Seconds a command job gets between SIGTERM and SIGKILL, unless its
/// `grace_secs` says otherwise.
pub const COMMAND_GRACE_SECS: u64 = 10;
/// Longest stdout/stderr line of a command job kept whole, in bytes.
pub const COMMAND_MAX_LINE_BYTES: usize = 8192;
/// Most output lines a command job may log per run (unless its
/// `max_log_lines` says otherwise); later lines are counted and dropped.
pub const COMMAND_MAX_LOG_LINES: u64 = 100_000;
/// Last stderr lines of a failed command job shown in its error.
pub const COMMAND_STDERR_TAIL: usize = 10;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: PathBuf,
    /// The job-type file given with `--config`/`JOBMGR_CONFIG`; when None,
    /// [`CONFIG_FILE_NAME`] beside the database is used if it exists.
    pub config: Option<PathBuf>,
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

    /// The job-type file to read, and whether it was named explicitly (a
    /// named file must exist; the default one may be absent).
    pub fn config_path(&self) -> (PathBuf, bool) {
        match &self.config {
            Some(p) => (p.clone(), true),
            None => {
                let dir = self.db.parent().filter(|p| !p.as_os_str().is_empty());
                let path = match dir {
                    Some(d) => d.join(CONFIG_FILE_NAME),
                    None => PathBuf::from(CONFIG_FILE_NAME),
                };
                (path, false)
            }
        }
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
            max_prefetch: 1024,
            write_retry_for: Duration::from_millis(self.stale_after_ms),
        }
    }
}

/// Days a finished run (completed or cancelled) is kept by default.
pub const RETENTION_FINISHED_DAYS: u64 = 30;
/// Below this much free space on the database's file system (in MiB) the
/// worker warns: SQLite refuses writes once the disk is full.
pub const DISK_FREE_MIN_MB: u64 = 1024;
/// How often the worker's housekeeping ticks (the disk guard looks at each
/// tick; retention runs when an hour has passed on the clock).
pub const HOUSEKEEPING_EVERY_MS: u64 = 60_000;
/// How long retention waits between runs, on the one clock.
pub const RETENTION_EVERY_MS: i64 = 3_600_000;

/// `[retention]` in `jobmgr.toml`: what the worker keeps of the history,
/// and the disk guard's threshold. On by default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// False: nothing is removed (the disk guard still watches).
    pub enabled: bool,
    /// Completed and cancelled runs older than this many days go.
    pub finished_days: u64,
    /// Failed runs older than this many days go.
    pub failed_days: u64,
    /// Keep at most this many finished runs, the oldest removed first.
    pub max_runs: Option<u64>,
    /// Remove the oldest finished runs while the data in the file is larger.
    pub max_database_mb: Option<u64>,
    /// Warn below this much free disk space (0: never).
    pub disk_free_min_mb: u64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            enabled: true,
            finished_days: RETENTION_FINISHED_DAYS,
            failed_days: RETENTION_FINISHED_DAYS,
            max_runs: None,
            max_database_mb: None,
            disk_free_min_mb: DISK_FREE_MIN_MB,
        }
    }
}
