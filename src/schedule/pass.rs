//! One decision pass of the scheduler: know every schedule (the file's and
//! the database's) and its state, plan those that are due, and gather what
//! to write. Reads only; the caller sends the writes to the worker's
//! writer.
//!
//! A pass must stay cheap with thousands of schedules, since it runs every
//! few seconds: the schedules, their states and each one's next due time
//! are kept between passes, and read again only when a cheap change mark
//! ([`schedules::change_mark`]) moves, or every [`FULL_READ`] in any case
//! (an edit stamped by a clock that went back would not move the mark).
//! A pass with nothing due costs that one query and a comparison per
//! schedule.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Previous, Schedule, plan};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::registry::Registry;
use crate::store::Connection;
use crate::store::schedules::{self, ScheduleWrite, State, TickWrite};

/// Everything is read again at least this often.
const FULL_READ: Duration = Duration::from_secs(30);

/// One schedule as the planner keeps it.
struct Known {
    schedule: Schedule,
    /// When a database schedule was made (None: from the file).
    created: Option<Timestamp>,
    /// The row's `updatedAt`, to re-parse only rows that changed.
    updated: String,
    /// Its state as of the last read, parsed once.
    state: Option<Kept>,
    /// The next due time and the "after" it was computed from.
    next: Option<(Timestamp, Option<Timestamp>)>,
}

/// A [`State`] with its times parsed.
struct Kept {
    since: Timestamp,
    /// After the later of `since` and the latest decided due time.
    after: Timestamp,
    waiting: Option<Timestamp>,
    paused: bool,
    last_run: Option<i64>,
    enabled: bool,
}

impl Kept {
    fn of(st: &State, now: Timestamp) -> Kept {
        let since = Timestamp::parse(&st.since).unwrap_or(now);
        let last_due = st.last_due.as_deref().and_then(Timestamp::parse);
        Kept {
            since,
            after: last_due.map_or(since, |l| l.max(since)),
            waiting: st.waiting.as_deref().and_then(Timestamp::parse),
            paused: st.paused,
            last_run: st.last_run.as_ref().map(|r| r.id),
            enabled: st.enabled,
        }
    }
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
    known: Vec<Known>,
    mark: Option<String>,
    read_at: Option<Instant>,
    /// Schedules already warned about, so a broken one is logged once.
    warned: HashSet<String>,
}

impl Planner {
    /// A planner for the file schedules in `registry` and those in the
    /// database.
    pub fn new(registry: Arc<Registry>) -> Planner {
        Planner {
            registry,
            known: Vec::new(),
            mark: None,
            read_at: None,
            warned: HashSet::new(),
        }
    }

    /// Plans every schedule at `now`, reading through `conn` what changed.
    pub fn pass(&mut self, conn: &Connection, now: Timestamp) -> Result<PassPlan> {
        let mark = schedules::change_mark(conn)?;
        let stale = self.read_at.is_none_or(|t| t.elapsed() >= FULL_READ);
        if stale || self.mark.as_deref() != Some(mark.as_str()) {
            self.read(conn, now)?;
            self.mark = Some(mark);
            self.read_at = Some(Instant::now());
        }
        let mut out = PassPlan::default();
        for i in 0..self.known.len() {
            if let Some(w) = self.plan_one(conn, i, now, &mut out.next_due)? {
                out.writes.push(w);
            }
        }
        Ok(out)
    }

    /// Reads the database's schedules (parsing only changed rows) and
    /// every state.
    fn read(&mut self, conn: &Connection, now: Timestamp) -> Result<()> {
        let mut old: HashMap<String, Known> = std::mem::take(&mut self.known)
            .into_iter()
            .filter(|k| k.created.is_some())
            .map(|k| (k.schedule.name.clone(), k))
            .collect();
        let file = self.registry.file_schedules();
        let file_names: HashSet<&str> = file.iter().map(|s| s.name.as_str()).collect();
        let mut known: Vec<Known> = file
            .iter()
            .map(|s| Known {
                schedule: s.clone(),
                created: None,
                updated: String::new(),
                state: None,
                next: None,
            })
            .collect();
        let mut warnings = Vec::new();
        for row in schedules::rows(conn)? {
            if file_names.contains(row.name.as_str()) {
                warnings.push((
                    row.name,
                    "is declared in jobmgr.toml too; the file's wins".into(),
                ));
                continue;
            }
            if let Some(k) = old
                .remove(&row.name)
                .filter(|k| k.updated == row.updated_at)
            {
                known.push(k);
                continue;
            }
            match row.parse() {
                Ok(schedule) => known.push(Known {
                    schedule,
                    created: Some(Timestamp::parse(&row.created_at).unwrap_or(Timestamp(0))),
                    updated: row.updated_at,
                    state: None,
                    next: None,
                }),
                Err(why) => warnings.push((row.name, format!("cannot be read: {why}"))),
            }
        }
        for (name, why) in warnings {
            self.warn(&name, &why);
        }
        let states = schedules::states(conn)?;
        for k in &mut known {
            k.state = states.get(&k.schedule.name).map(|st| Kept::of(st, now));
        }
        self.known = known;
        Ok(())
    }

    fn plan_one(
        &mut self,
        conn: &Connection,
        i: usize,
        now: Timestamp,
        next_due: &mut Option<Timestamp>,
    ) -> Result<Option<ScheduleWrite>> {
        let k = &self.known[i];
        let s = &k.schedule;
        let state = k.state.as_ref();
        let waiting = state.and_then(|st| st.waiting);
        if let Some(st) = state.filter(|st| st.enabled && !s.enabled) {
            // Turned off: remembered, so that turning it on again is seen.
            return Ok(Some(ScheduleWrite {
                name: s.name.clone(),
                job: s.job.clone(),
                parameters: "{}".into(),
                since: st.since.to_text(),
                ticks: Vec::new(),
                last_due: None,
                waiting: waiting.map(Timestamp::to_text),
                enabled: false,
                restart: false,
            }));
        }
        let turned_on = state.is_some_and(|st| !st.enabled && s.enabled);
        // A schedule the scheduler has not seen starts now (a file one)
        // or when it was made (an API one), and one enabled again starts
        // now: none backfills.
        let since = match state {
            _ if turned_on => now,
            Some(st) => st.since,
            None => k.created.unwrap_or(now),
        };
        let after = match state {
            Some(st) if !turned_on => st.after,
            _ => since,
        };
        if state.is_some() && waiting.is_none() && !turned_on {
            if !s.enabled {
                return Ok(None);
            }
            if let Some((a, next)) = k.next
                && a == after
                && next.is_none_or(|n| n > now)
            {
                *next_due = earliest(*next_due, next);
                return Ok(None);
            }
        }
        let params = match self
            .registry
            .get(&s.job)
            .and_then(|jt| jt.validate(&s.parameters))
        {
            Ok(p) => p,
            Err(e) => {
                let name = s.name.clone();
                self.warn(&name, &format!("is not planned: {e}"));
                return Ok(None);
            }
        };
        // The run's status now, not as of the last full read.
        let previous = match state.and_then(|st| st.last_run) {
            Some(id) => match schedules::run_status(conn, id)? {
                Some(st) if !st.is_finished() => Previous::Unfinished(id),
                _ => Previous::Done,
            },
            None => Previous::Done,
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
        let new_after = p.last_due.map_or(after, |l| l.max(after));
        let changed = state.is_none() || turned_on || !p.decisions.is_empty();
        let write = (changed || p.waiting != waiting).then(|| ScheduleWrite {
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
            enabled: s.enabled,
            restart: turned_on,
        });
        self.known[i].next = Some((new_after, p.next_due));
        Ok(write)
    }

    /// Forgets what it knows (after a failed write, so the next pass reads
    /// and plans everything again).
    pub fn forget(&mut self) {
        self.mark = None;
        for k in &mut self.known {
            k.next = None;
        }
    }

    /// Its writes were committed: read the states again at the next pass
    /// (they hold the new runs, which the change mark alone may miss when
    /// the clock went back).
    pub fn wrote(&mut self) {
        self.mark = None;
    }

    /// How many schedules the last read found.
    pub fn known(&self) -> usize {
        self.known.len()
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
