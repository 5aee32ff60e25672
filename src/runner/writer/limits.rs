//! The writer's side of `max_running`, groups and paused types. The worker
//! is the only process that runs runs, so the writer knows exactly how many
//! of each type are in flight; from that it tells the claim how many more
//! of each type it may start. Without any limit or pause the claim is the
//! plain one, unchanged.

use std::collections::{HashMap, HashSet};

use super::Writer;
use crate::error::Result;
use crate::store::batch::{Limits, ResolveWaiting, TypeRoom};
use crate::store::pauses;

/// The paused types, as last read.
#[derive(Debug, Default)]
pub(super) struct Paused(HashSet<String>);

impl Paused {
    /// Reads them from the database.
    pub(super) fn read(conn: &crate::store::Connection) -> Result<Paused> {
        Ok(Paused(pauses::paused(conn)?.into_iter().collect()))
    }
}

/// Whether runs wait for others, and whether something they wait for may
/// have ended since the last resolution.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    any: bool,
    changed: bool,
}

impl Waiting {
    /// Reads whether any run waits.
    pub(super) fn read(conn: &crate::store::Connection) -> Result<Waiting> {
        Ok(Waiting {
            any: crate::store::deps::waiting_count(conn)? > 0,
            changed: false,
        })
    }

    /// The same, with another process's commit to look at.
    pub(super) fn changed(mut self) -> Waiting {
        self.changed = true;
        self
    }

    /// Which waiting runs the next commit resolves (`finished`: it
    /// records finished runs): after another process's commit every one,
    /// else those waiting for the runs it ends.
    pub(super) fn due(&self, finished: bool) -> ResolveWaiting {
        match (self.any, self.changed, finished) {
            (false, _, _) | (true, false, false) => ResolveWaiting::No,
            (true, true, _) => ResolveWaiting::All,
            (true, false, true) => ResolveWaiting::After,
        }
    }
}

impl Writer {
    /// Whether the claim must count (a limit is set, or a type is paused).
    pub(super) fn limited(&self) -> bool {
        self.has_limits || !self.paused.0.is_empty()
    }

    /// What the next claim may start, or None for the plain claim.
    pub(super) fn limits(&self) -> Option<Limits> {
        if !self.limited() {
            return None;
        }
        let mut running: HashMap<&str, usize> = HashMap::new();
        for f in self.in_flight.values() {
            *running.entry(f.job_name.as_str()).or_default() += 1;
        }
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        let mut groups = Vec::new();
        for (name, g) in self.registry.groups() {
            let used: usize = self
                .registry
                .names()
                .filter(|t| self.registry.policy(t).group.as_deref() == Some(name.as_str()))
                .map(|t| running.get(t).copied().unwrap_or(0))
                .sum();
            group_index.insert(name.as_str(), groups.len());
            groups.push((g.max_running as usize).saturating_sub(used));
        }
        let types = self
            .registry
            .names()
            .filter(|t| !self.paused.0.contains(*t))
            .map(|t| {
                let policy = self.registry.policy(t);
                let room = policy.max_running.map_or(usize::MAX, |m| {
                    (m as usize).saturating_sub(running.get(t).copied().unwrap_or(0))
                });
                TypeRoom {
                    name: t.to_string(),
                    room,
                    group: policy
                        .group
                        .as_deref()
                        .and_then(|g| group_index.get(g).copied()),
                }
            })
            .filter(|t| t.room > 0)
            .collect();
        Some(Limits { types, groups })
    }
}
