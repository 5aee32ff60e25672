//! The one clock: every part of jobmgr asks it for the wall time, so that
//! tests can freeze and move time. A process chooses its clock once, at
//! start ([`init_from_env`]): the system clock, unless a test asked for
//! another through one of the test-only environment variables below. They
//! are variables and not flags so that no `--help` shows them and `jobmgr
//! serve` hands them to the worker it starts.
//!
//! - [`OFFSET_ENV`] (`JOBMGR_TEST_CLOCK_OFFSET_MS=-86400000`): the system
//!   clock moved by that many milliseconds.
//! - [`FILE_ENV`] (`JOBMGR_TEST_CLOCK_FILE=/tmp/t/now`): the time written in
//!   that file (milliseconds since the epoch, or `2031-05-06T07:08:09.000Z`),
//!   read on every look, so a test moves time by rewriting the file.
//!
//! Durations (intervals, timeouts of a wait) are measured with `Instant`
//! and do not go through this clock; timestamps do.

mod driven;
#[cfg(test)]
mod thread;
mod timestamp;
mod when;

use std::path::Path;
#[cfg(test)]
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use driven::Driven;
#[cfg(test)]
pub use thread::use_on_this_thread;
pub use timestamp::Timestamp;
pub use when::{parse_delay, parse_instant};

/// Test only: run on the system clock moved by this many milliseconds.
pub const OFFSET_ENV: &str = "JOBMGR_TEST_CLOCK_OFFSET_MS";
/// Test only: run on the time written in this file.
pub const FILE_ENV: &str = "JOBMGR_TEST_CLOCK_FILE";

/// A source of wall time. [`now`] uses the process's own;
/// unit tests build their own ([`ManualClock`]).
#[derive(Debug, Clone)]
pub struct Clock(Kind);

#[derive(Debug, Clone)]
enum Kind {
    System,
    Offset(i64),
    Driven(Arc<Driven>),
    #[cfg(test)]
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Kind::System)
    }

    /// The system clock moved by `ms` milliseconds (negative is earlier).
    pub fn offset(ms: i64) -> Clock {
        Clock(Kind::Offset(ms))
    }

    /// The time written in the file at `path`, which must hold one now.
    pub fn driven(path: &Path) -> Result<Clock> {
        Ok(Clock(Kind::Driven(Arc::new(Driven::open(path)?))))
    }

    /// The clock the test-only variables ask for, given their values
    /// (`None` or empty: not set).
    pub fn from_settings(offset: Option<&str>, file: Option<&Path>) -> Result<Clock> {
        let offset = offset.filter(|s| !s.is_empty());
        let file = file.filter(|p| !p.as_os_str().is_empty());
        match (offset, file) {
            (None, None) => Ok(Clock::system()),
            (Some(ms), None) => ms.trim().parse().map(Clock::offset).map_err(|_| {
                Error::Invalid(format!(
                    "{OFFSET_ENV}={ms:?}: expected a whole number of milliseconds"
                ))
            }),
            (None, Some(path)) => Clock::driven(path),
            (Some(_), Some(_)) => Err(Error::Invalid(format!(
                "{OFFSET_ENV} and {FILE_ENV} are both set: use one test clock"
            ))),
        }
    }

    /// The clock the environment asks for (see the module header).
    pub fn from_env() -> Result<Clock> {
        let offset = match std::env::var_os(OFFSET_ENV) {
            Some(v) => Some(
                v.into_string()
                    .map_err(|v| Error::Invalid(format!("{OFFSET_ENV}={v:?}: not valid UTF-8")))?,
            ),
            None => None,
        };
        let file = std::env::var_os(FILE_ENV);
        Clock::from_settings(offset.as_deref(), file.as_deref().map(Path::new))
    }

    /// The current time by this clock.
    #[inline]
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Kind::System => system_now(),
            Kind::Offset(ms) => system_now().plus_ms(*ms),
            Kind::Driven(d) => d.now(),
            #[cfg(test)]
            Kind::Manual(t) => Timestamp(t.load(Ordering::Acquire)),
        }
    }

    /// What a log line says about a test clock; `None` for the system clock.
    fn describe_test_clock(&self) -> Option<String> {
        match &self.0 {
            Kind::System => None,
            Kind::Offset(ms) => Some(format!("system clock moved by {ms} ms ({OFFSET_ENV})")),
            Kind::Driven(d) => Some(format!("the time in {} ({FILE_ENV})", d.path().display())),
            #[cfg(test)]
            Kind::Manual(_) => Some("a manual clock".into()),
        }
    }
}

/// A clock that moves only when told to, for unit tests.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

#[cfg(test)]
impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    /// The [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        Clock(Kind::Manual(self.0.clone()))
    }

    /// Sets the time to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::Release);
    }

    /// Moves the time by `ms` milliseconds.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::AcqRel);
    }
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// Chooses the process clock from the environment; called once at start,
/// so a bad test-clock variable is an error before anything runs. The
/// first choice stands: a second call changes nothing.
pub fn init_from_env() -> Result<()> {
    let clock = Clock::from_env()?;
    if let Some(what) = clock.describe_test_clock() {
        log::warn!("test clock in use: {what}");
    }
    let _ = CLOCK.set(clock);
    Ok(())
}

/// The process clock. Chosen from the environment on first use if
/// [`init_from_env`] was not called (a library user); a bad variable then
/// falls back to the system clock with an error in the log.
pub fn global() -> &'static Clock {
    CLOCK.get_or_init(|| {
        Clock::from_env().unwrap_or_else(|e| {
            log::error!("{e}; using the system clock");
            Clock::system()
        })
    })
}

/// The current time by the process clock (in a unit test, by the clock its
/// thread set with `use_on_this_thread`, if any).
#[inline]
pub fn now() -> Timestamp {
    #[cfg(test)]
    if let Some(c) = thread::get() {
        return c.now();
    }
    global().now()
}

/// The one read of the system's wall clock.
#[inline]
fn system_now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

#[cfg(test)]
mod tests;
