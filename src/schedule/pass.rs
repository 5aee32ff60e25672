//! One decision pass of the scheduler: read every schedule (the file's and
//! the database's) and their states, plan each, and gather what to write.
//! Reads only; the caller sends the writes to the worker's writer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Previous, Schedule, Source, plan};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::registry::Registry;
use crate::store::Connection;
use crate::store::schedules::{self, ScheduleWrite, State, TickWrite};

/// A schedule's next due time, kept between passes so that a pass with
/// nothing due costs a comparison per schedule instead of a cron walk.
#[derive(Debug, Clone, PartialEq)]
struct Cached {
    after: Timestamp,
    cron: String,
    zone: &'static str,
    next: Option<Timestamp>,
}

/// What a pass found.
#[derive(Debug, Default)]
pub struct PassPlan {
    /// Per schedule with something to record.
    pub writes: Vec<ScheduleWrite>,
    /// The earliest next due time of any schedule.
    pub next_due: Option<Timestamp>,
}

/// The planning half of the scheduler.
pub struct Planner {
    registry: Arc<Registry>,
    cache: HashMap<String, Cached>,
    /// Schedules already warned about, so a broken one is logged once.
    warned: HashSet<String>,
}

impl Planner {
    /// A planner for the file schedules in `registry` and those in the
    /// database.
    pub fn new(registry: Arc<Registry>) -> Planner {
        Planner {
            registry,
            cache: HashMap::new(),
            warned: HashSet::new(),
        }
    }

    /// Reads the schedules through `conn` and plans every one at `now`.
    pub fn pass(&mut self, conn: &Connection, now: Timestamp) -> Result<PassPlan> {
        let stored = schedules::list(conn)?;
        let states = schedules::states(conn)?;
        let mut out = PassPlan::default();
        let registry = self.registry.clone();
        let mut db: Vec<(Schedule, Timestamp)> = Vec::with_capacity(stored.len());
        for s in stored {
            match s.schedule {
                Ok(sc) => {
                    let created = Timestamp::parse(&s.created_at).unwrap_or(now);
                    db.push((sc, created));
                }
                Err(why) => self.warn(&s.name, &format!("cannot be read: {why}")),
            }
        }
        let file = registry.file_schedules().iter().map(|s| (s, None));
        let api = db.iter().map(|(s, c)| (s, Some(*c)));
        let file_names: HashSet<&str> = registry
            .file_schedules()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for (s, created) in file.chain(api) {
            if s.source == Source::Api && file_names.contains(s.name.as_str()) {
                self.warn(&s.name, "is declared in jobmgr.toml too; the file's wins");
                continue;
            }
            let state = states.get(&s.name);
            if let Some(w) = self.plan_one(s, state, created, now, &mut out.next_due) {
                out.writes.push(w);
            }
        }
        Ok(out)
    }

    fn plan_one(
        &mut self,
        s: &Schedule,
        state: Option<&State>,
        created: Option<Timestamp>,
        now: Timestamp,
        next_due: &mut Option<Timestamp>,
    ) -> Option<ScheduleWrite> {
        // A schedule the scheduler has not seen starts now (a file one)
        // or when it was made (an API one): it never backfills.
        let since = match state {
            Some(st) => Timestamp::parse(&st.since).unwrap_or(now),
            None => created.unwrap_or(now),
        };
        let last_due = state.and_then(|st| st.last_due.as_deref().and_then(Timestamp::parse));
        let after = last_due.map_or(since, |l| l.max(since));
        let waiting = state.and_then(|st| st.waiting.as_deref().and_then(Timestamp::parse));
        if state.is_some() && waiting.is_none() {
            if !s.enabled {
                return None;
            }
            let key = Cached {
                after,
                cron: s.cron.as_str().to_string(),
                zone: s.zone.name(),
                next: None,
            };
            if let Some(c) = self.cache.get(&s.name)
                && c.after == key.after
                && c.cron == key.cron
                && c.zone == key.zone
                && c.next.is_none_or(|n| n > now)
            {
                *next_due = earliest(*next_due, c.next);
                return None;
            }
        }
        let params = match self
            .registry
            .get(&s.job)
            .and_then(|jt| jt.validate(&s.parameters))
        {
            Ok(p) => p,
            Err(e) => {
                self.warn(&s.name, &format!("is not planned: {e}"));
                return None;
            }
        };
        let previous = match state.and_then(|st| st.last_run.as_ref()) {
            Some(r) if r.status.is_some_and(|st| !st.is_finished()) => Previous::Unfinished(r.id),
            _ => Previous::Done,
        };
        let p = plan(&super::PlanInput {
            schedule: s,
            after,
            waiting,
            now,
            paused: state.is_some_and(|st| st.paused),
            previous,
        });
        *next_due = earliest(*next_due, p.next_due);
        self.cache.insert(
            s.name.clone(),
            Cached {
                after: p.last_due.unwrap_or(after).max(after),
                cron: s.cron.as_str().to_string(),
                zone: s.zone.name(),
                next: p.next_due,
            },
        );
        if state.is_some() && p.decisions.is_empty() && p.waiting == waiting {
            return None;
        }
        Some(ScheduleWrite {
            name: s.name.clone(),
            job: s.job.clone(),
            parameters: serde_json::to_string(&params).unwrap_or_else(|_| "{}".into()),
            since: since.to_text(),
            ticks: p
                .decisions
                .into_iter()
                .map(|d| TickWrite {
                    due: d.due.to_text(),
                    outcome: d.outcome,
                    reason: d.reason,
                })
                .collect(),
            last_due: p.last_due.map(Timestamp::to_text),
            waiting: p.waiting.map(Timestamp::to_text),
        })
    }

    /// Forgets the cached next due times (after a failed write, so the
    /// next pass plans everything again).
    pub fn forget(&mut self) {
        self.cache.clear();
    }

    fn warn(&mut self, name: &str, what: &str) {
        if self.warned.insert(format!("{name}: {what}")) {
            log::warn!("schedule {name} {what}");
        }
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
