//! The policy planner: given a schedule, the due time it last decided (or
//! the moment it started, so a new schedule never backfills), the time
//! now, whether it is paused and whether its previous run is unfinished,
//! it decides every due time in (last, now]. Pure: the scheduler thread
//! writes what it returns.
//!
//! The rules, in the order they apply to each due time:
//! 1. Paused: `SKIPPED_PAUSED`.
//! 2. A due time is *on time* when `now - due <= 60 s` ([`GRACE_MS`]);
//!    older ones were *missed* (downtime, a sleeping host, a clock jump).
//!    On-time ones are always candidates to run. Of the missed ones,
//!    `missed = "skip"` runs none, `"latest"` runs the most recent due time
//!    of the window, `"all"` the most recent `max_catch_up`; the rest are
//!    `SKIPPED_MISSED`.
//! 3. A candidate while the schedule's previous run (or one enqueued
//!    earlier in the same pass) is unfinished: `overlap = "skip"` records
//!    `SKIPPED_OVERLAP`; `"allow"` enqueues it anyway; `"queue"` lets one
//!    due time wait, undecided, until the previous run finishes and then
//!    enqueues it, and records further ones meanwhile as `SKIPPED_OVERLAP`
//!    ("one run already waits"), so runs never pile up and then burst.
//! 4. Otherwise `ENQUEUED`.
//!
//! A pass records at most [`MAX_ROWS`] ledger rows per schedule: when a
//! window holds more due times (a 6-field expression after a week down),
//! the oldest are recorded as one row, at the latest of them, whose reason
//! says how many due times it stands for and from when to when.

use std::collections::VecDeque;

use super::Schedule;
use crate::clock::Timestamp;
use crate::worker::human_ms;

/// How late a due time may be decided and still count as on time.
pub const GRACE_MS: i64 = 60_000;
/// Most ledger rows one pass records for one schedule.
pub const MAX_ROWS: usize = 1_000;

/// What became of a due time: the `outcome` column of `ScheduleTick`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    #[serde(rename = "ENQUEUED")]
    Enqueued,
    #[serde(rename = "SKIPPED_MISSED")]
    SkippedMissed,
    #[serde(rename = "SKIPPED_OVERLAP")]
    SkippedOverlap,
    #[serde(rename = "SKIPPED_PAUSED")]
    SkippedPaused,
}

impl Outcome {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Enqueued => "ENQUEUED",
            Outcome::SkippedMissed => "SKIPPED_MISSED",
            Outcome::SkippedOverlap => "SKIPPED_OVERLAP",
            Outcome::SkippedPaused => "SKIPPED_PAUSED",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Enqueued,
            Outcome::SkippedMissed,
            Outcome::SkippedOverlap,
            Outcome::SkippedPaused,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// The schedule's previous run, as far as overlap cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// No run, or it has finished.
    Done,
    /// Run `id` is queued or running.
    Unfinished(i64),
}

/// What the planner is given.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub schedule: &'a Schedule,
    /// The latest decided due time, or the schedule's start.
    pub after: Timestamp,
    /// A due time waiting for the previous run (`overlap = "queue"`).
    pub waiting: Option<Timestamp>,
    pub now: Timestamp,
    pub paused: bool,
    pub previous: Previous,
}

/// One decided due time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub due: Timestamp,
    pub outcome: Outcome,
    pub reason: String,
}

/// What the planner decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In due-time order.
    pub decisions: Vec<Decision>,
    /// The due time left waiting for the previous run, if any.
    pub waiting: Option<Timestamp>,
    /// The latest due time this plan covered (the new "last decided");
    /// None when the window held none.
    pub last_due: Option<Timestamp>,
    /// The first due time after the window.
    pub next_due: Option<Timestamp>,
}

/// Decides every due time in `(input.after, input.now]` (see the module
/// header for the rules).
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let s = input.schedule;
    let mut decisions = Vec::new();
    let mut waiting = input.waiting;
    let mut unfinished = match input.previous {
        Previous::Done => None,
        Previous::Unfinished(id) => Some(Some(id)),
    };
    if let Some(w) = waiting {
        if input.paused {
            decisions.push(decision(
                w,
                Outcome::SkippedPaused,
                "paused while it waited for the previous run".into(),
            ));
            waiting = None;
        } else if unfinished.is_none() {
            decisions.push(decision(
                w,
                Outcome::Enqueued,
                "waited for the previous run to finish".into(),
            ));
            waiting = None;
            unfinished = Some(None);
        }
    }
    if !s.enabled {
        return Plan {
            decisions,
            waiting,
            last_due: None,
            next_due: None,
        };
    }

    // The window, keeping only the newest MAX_ROWS - 1 due times; the
    // older ones are counted and recorded as one row.
    let mut tail: VecDeque<Timestamp> = VecDeque::new();
    let mut dropped: Option<(u64, Timestamp, Timestamp)> = None;
    let mut next_due = s.next_after(input.after);
    while let Some(d) = next_due.filter(|d| *d <= input.now) {
        if tail.len() == MAX_ROWS - 1
            && let Some(old) = tail.pop_front()
        {
            dropped = Some(match dropped {
                None => (1, old, old),
                Some((n, first, _)) => (n + 1, first, old),
            });
        }
        tail.push_back(d);
        next_due = s.next_after(d);
    }
    let last_due = tail.back().copied();

    if let Some((n, first, last)) = dropped {
        let (outcome, why) = if input.paused {
            (Outcome::SkippedPaused, "paused".to_string())
        } else {
            (Outcome::SkippedMissed, missed_reason(s, input.now, last))
        };
        let reason = if n == 1 {
            why
        } else {
            format!(
                "{why}; this row stands for {n} due times from {} to {}",
                first.to_text(),
                last.to_text()
            )
        };
        decisions.push(decision(last, outcome, reason));
    }

    let len = tail.len();
    for (i, d) in tail.into_iter().enumerate() {
        // 0 is the most recent due time of the window.
        let age = len - 1 - i;
        if input.paused {
            decisions.push(decision(d, Outcome::SkippedPaused, "paused".into()));
            continue;
        }
        let on_time = input.now.0 - d.0 <= GRACE_MS;
        let candidate = on_time
            || match s.missed {
                super::Missed::Skip => false,
                super::Missed::Latest => age == 0,
                super::Missed::All => age < s.max_catch_up as usize,
            };
        if !candidate {
            decisions.push(decision(
                d,
                Outcome::SkippedMissed,
                missed_reason(s, input.now, d),
            ));
            continue;
        }
        let Some(prev) = unfinished else {
            let why = if on_time {
                "on time".to_string()
            } else {
                format!(
                    "late by {} (missed = \"{}\")",
                    human_ms(input.now.0 - d.0),
                    s.missed.as_str()
                )
            };
            decisions.push(decision(d, Outcome::Enqueued, why));
            unfinished = Some(None);
            continue;
        };
        let busy = match prev {
            Some(id) => format!("run {id} of this schedule is unfinished"),
            None => "the previous run of this schedule is unfinished".to_string(),
        };
        match s.overlap {
            super::Overlap::Allow => decisions.push(decision(
                d,
                Outcome::Enqueued,
                format!("{busy}; overlap = \"allow\""),
            )),
            super::Overlap::Skip => decisions.push(decision(
                d,
                Outcome::SkippedOverlap,
                format!("{busy} (overlap = \"skip\")"),
            )),
            super::Overlap::Queue if waiting.is_none() => waiting = Some(d),
            super::Overlap::Queue => decisions.push(decision(
                d,
                Outcome::SkippedOverlap,
                format!("{busy} and one run already waits (overlap = \"queue\")"),
            )),
        }
    }
    // The waiting one was decided before the window's; keep due order.
    decisions.sort_by_key(|d| d.due);
    Plan {
        decisions,
        waiting,
        last_due,
        next_due,
    }
}

fn decision(due: Timestamp, outcome: Outcome, reason: String) -> Decision {
    Decision {
        due,
        outcome,
        reason,
    }
}

fn missed_reason(s: &Schedule, now: Timestamp, due: Timestamp) -> String {
    let late = human_ms(now.0 - due.0);
    match s.missed {
        super::Missed::Skip => format!("missed by {late} (missed = \"skip\")"),
        super::Missed::Latest => {
            format!("missed by {late}; only the latest due time runs (missed = \"latest\")")
        }
        super::Missed::All => format!(
            "missed by {late}; beyond the {} most recent (missed = \"all\", max_catch_up = {})",
            s.max_catch_up, s.max_catch_up
        ),
    }
}

#[cfg(test)]
mod tests;
