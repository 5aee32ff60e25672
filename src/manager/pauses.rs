//! Pausing and resuming job types (audited), and what `job-types` shows of
//! them: paused or not, and how many runs wait.

use std::collections::HashMap;

use serde::Serialize;

use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::pauses;

/// A type's state for `job-types` and `/api/job-types`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeState {
    pub paused: bool,
    /// Its QUEUED runs.
    pub queued: i64,
}

impl Manager {
    /// Pauses (or, with `paused` false, resumes) job type `name`, its audit
    /// row in the same commit; returns whether it changed.
    pub fn set_paused(&self, name: &str, paused: bool, by: &Actor) -> Result<bool> {
        self.registry.get(name)?;
        let now = Timestamp::now().to_text();
        self.store.write("pause job type", |tx| {
            let changed = if paused {
                pauses::pause(tx, name, &now)?
            } else {
                pauses::resume(tx, name)?
            };
            if changed {
                let action = if paused {
                    "jobtype.pause"
                } else {
                    "jobtype.resume"
                };
                by.row(action, Some(format!("job type {name}")), None)
                    .insert(tx, &now)?;
            }
            Ok(changed)
        })
    }

    /// Every known type's state, by name.
    pub fn type_states(&self) -> Result<HashMap<String, TypeState>> {
        let conn = self.store.conn()?;
        let paused = pauses::paused(&conn)?;
        let queued: HashMap<String, i64> = pauses::queued_by_type(&conn)?.into_iter().collect();
        Ok(self
            .registry
            .names()
            .map(|n| {
                let state = TypeState {
                    paused: paused.iter().any(|p| p == n),
                    queued: queued.get(n).copied().unwrap_or(0),
                };
                (n.to_string(), state)
            })
            .collect())
    }
}
