//! Schedules: a job run on a cron expression in a time zone, and the rules
//! that decide what becomes of each due time. This module is pure (no
//! database, no threads): the spec and its checks, the time arithmetic
//! ([`cron`]) and the policy planner ([`plan`]). The worker's scheduler
//! thread ([`scheduler`]) reads the schedules, plans, and writes the
//! decisions.
//!
//! **Time.** Due times are computed in the schedule's zone and stored in
//! UTC. Daylight saving has one rule: a local time that does not exist
//! (the spring gap, `30 2 * * *` in Europe/Berlin on the last Sunday of
//! March) runs at the first instant after the gap (03:00 local); a local
//! time that happens twice (autumn) runs once, at the first of the two.
//!
//! **Decisions.** Every due time is decided exactly once, as one row of
//! the public `ScheduleTick` ledger: `ENQUEUED` (with the run it made),
//! `SKIPPED_MISSED`, `SKIPPED_OVERLAP` or `SKIPPED_PAUSED` (with a reason).
//! See [`plan`] for the rules.

pub mod cron;
pub(crate) mod pass;
pub mod plan;
pub mod scheduler;

use serde::Serialize;
use serde_json::{Map, Value};

pub use cron::{CronExpr, local_text, parse_zone};
pub use plan::{Outcome, PlanInput, Previous, plan};

/// The time zone type schedules are computed in.
pub use chrono_tz::Tz;

/// Most due times caught up by `missed = "all"`.
pub const MAX_CATCH_UP: u32 = 500;
/// `max_catch_up` when not given.
pub const DEFAULT_CATCH_UP: u32 = 10;

/// What becomes of due times that passed while nothing could decide them
/// (downtime, a sleeping host, a clock jump).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    /// Only a due time decided on time is enqueued; missed ones are skipped.
    Skip,
    /// The most recent due time is enqueued, missed or not.
    Latest,
    /// The most recent `max_catch_up` due times are enqueued.
    All,
}

/// What a due time does while the schedule's previous run is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Skipped.
    Skip,
    /// One due time waits until the previous run finishes, then runs;
    /// further ones meanwhile are skipped.
    Queue,
    /// Enqueued anyway.
    Allow,
}

/// Where a schedule is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `[schedules.NAME]` in jobmgr.toml: edited in the file.
    File,
    /// Made through the API (the `Schedule` table).
    Api,
}

impl Missed {
    /// The stored and configured text.
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::Skip => "skip",
            Missed::Latest => "latest",
            Missed::All => "all",
        }
    }

    /// Parses the text form; the error lists the choices.
    pub fn parse(s: &str) -> Result<Missed, String> {
        match s {
            "skip" => Ok(Missed::Skip),
            "latest" => Ok(Missed::Latest),
            "all" => Ok(Missed::All),
            _ => Err(choice_error(s, &["skip", "latest", "all"])),
        }
    }
}

impl Overlap {
    /// The stored and configured text.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }

    /// Parses the text form; the error lists the choices.
    pub fn parse(s: &str) -> Result<Overlap, String> {
        match s {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            _ => Err(choice_error(s, &["skip", "queue", "allow"])),
        }
    }
}

impl Source {
    /// The text the API answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Api => "api",
        }
    }
}

fn choice_error(s: &str, choices: &[&str]) -> String {
    let mut msg = format!("unknown value '{s}'");
    match crate::error::suggest(s, choices.iter().copied()) {
        Some(g) => msg.push_str(&format!(" (did you mean '{g}'?)")),
        None => msg.push_str(&format!(" (expected one of: {})", choices.join(", "))),
    }
    msg
}

/// One schedule as declared: what to run and when.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The job type to run.
    pub job: String,
    pub cron: CronExpr,
    pub zone: Tz,
    /// The run's parameters (validated against the job type).
    pub parameters: Map<String, Value>,
    pub missed: Missed,
    /// For [`Missed::All`]: most due times caught up at once.
    pub max_catch_up: u32,
    pub overlap: Overlap,
    /// A disabled schedule has no due times at all.
    pub enabled: bool,
    pub source: Source,
}

impl Schedule {
    /// The first due time strictly after `t`.
    pub fn next_after(&self, t: crate::clock::Timestamp) -> Option<crate::clock::Timestamp> {
        self.cron.next_after(t, self.zone)
    }
}

/// Checks a schedule name: letters, digits, `.`, `_` and `-`, at most 64.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name == "preview" {
        // `/api/schedules/preview` is the preview route.
        Err("'preview' is reserved; choose another name".into())
    } else if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}': a schedule name uses letters, digits, '.', '_' and '-' \
             (at most 64 characters, starting with a letter or digit)"
        ))
    }
}

/// Checks that `cron` comes due at all in `zone` (`0 0 30 2 *` never
/// does): for the checks of new schedules, not for every read.
pub fn check_reachable(cron: &CronExpr, zone: Tz) -> Result<(), String> {
    match cron.next_after(crate::clock::now(), zone) {
        Some(_) => Ok(()),
        None => Err(format!(
            "'{}' never comes due (no such date)",
            cron.as_str()
        )),
    }
}

/// Checks `max_catch_up`.
pub fn check_catch_up(n: i64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_CATCH_UP).contains(&n) => Ok(n),
        _ => Err(format!("must be between 1 and {MAX_CATCH_UP}, got {n}")),
    }
}

#[cfg(test)]
mod tests;
