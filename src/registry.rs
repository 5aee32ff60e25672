//! The job-type registry: each type's name, description, declared
//! parameters and handler, and the validation that runs before a run is
//! enqueued, so a bad value is refused before anything is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::{JobContext, JobError};
use crate::error::{Error, Result, suggest};

mod params;
pub use params::{ParamKind, ParamSpec, Pattern};

/// What a job does: called on an executor thread with the run's context.
pub type Handler = Arc<dyn Fn(&JobContext) -> std::result::Result<(), JobError> + Send + Sync>;

/// A registered kind of job.
#[derive(Clone)]
pub struct JobType {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
    /// Whether a run interrupted by a lost worker may simply run again.
    pub retry_safe: bool,
    pub handler: Handler,
}

impl JobType {
    /// Validates supplied parameters: unknown names, missing required ones
    /// and ill-typed values are refused; defaults fill the gaps.
    pub fn validate(&self, supplied: &Map<String, Value>) -> Result<Map<String, Value>> {
        if let Some(unknown) = supplied
            .keys()
            .find(|k| !self.params.iter().any(|p| &p.name == *k))
        {
            let mut message = format!("unknown parameter for job type '{}'", self.name);
            if let Some(s) = suggest(unknown, self.params.iter().map(|p| p.name.as_str())) {
                message.push_str(&format!(" (did you mean '{s}'?)"));
            }
            return Err(Error::InvalidParameter {
                name: unknown.clone(),
                message,
            });
        }
        let mut out = Map::new();
        for spec in &self.params {
            match supplied.get(&spec.name).filter(|v| !v.is_null()) {
                Some(v) => {
                    out.insert(spec.name.clone(), spec.check(v)?);
                }
                None => match &spec.default {
                    Some(d) => {
                        out.insert(spec.name.clone(), d.clone());
                    }
                    None if spec.required => {
                        return Err(Error::InvalidParameter {
                            name: spec.name.clone(),
                            message: "is required".into(),
                        });
                    }
                    None => {}
                },
            }
        }
        Ok(out)
    }
}

/// What `job-types` and `/api/job-types` show of a type.
#[derive(Debug, Clone, Serialize)]
pub struct JobTypeInfo {
    pub name: String,
    pub description: String,
    pub parameters: Vec<ParamSpec>,
    #[serde(rename = "retrySafe")]
    pub retry_safe: bool,
    /// The type's run policy (only the settings made), see [`crate::policies`].
    pub policy: Value,
}

/// All job types this process knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, JobType>,
    /// The config file's `[schedules.NAME]`: they travel with the job
    /// types because every process that reads the file (worker, server,
    /// CLI) is handed this registry, and a schedule is checked against it.
    schedules: Vec<crate::schedule::Schedule>,
    /// Run policies by type name (a type without one has none); kept
    /// beside the types rather than in [`JobType`] so that a type is still
    /// written as before, and set with [`Registry::set_policy`].
    policies: BTreeMap<String, crate::policies::Policy>,
    /// `[groups.NAME]`: limits shared by the types naming the group.
    groups: BTreeMap<String, crate::policies::Group>,
    /// The config file's `[[notify]]` entries: recovery, run by whichever
    /// process holds this registry, queues their deliveries.
    notifiers: Vec<crate::notify::Notifier>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds or replaces a type.
    pub fn register(&mut self, job_type: JobType) {
        self.types.insert(job_type.name.clone(), job_type);
    }

    /// Sets the run policy of type `name` (replacing any it had).
    pub fn set_policy(&mut self, name: &str, policy: crate::policies::Policy) {
        self.policies.insert(name.to_string(), policy);
    }

    /// The run policy of type `name` (the empty one when it has none).
    pub fn policy(&self, name: &str) -> &crate::policies::Policy {
        static NONE: std::sync::OnceLock<crate::policies::Policy> = std::sync::OnceLock::new();
        self.policies
            .get(name)
            .unwrap_or_else(|| NONE.get_or_init(crate::policies::Policy::default))
    }

    /// Sets the limit of group `name`.
    pub fn set_group(&mut self, name: &str, group: crate::policies::Group) {
        self.groups.insert(name.to_string(), group);
    }

    /// The names of every type, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// Whether any type has a `max_running` or a group, so the worker's
    /// claim must count.
    pub fn has_limits(&self) -> bool {
        self.policies.iter().any(|(name, p)| {
            self.types.contains_key(name) && (p.max_running.is_some() || p.group.is_some())
        })
    }

    /// Every group, by name.
    pub fn groups(&self) -> &BTreeMap<String, crate::policies::Group> {
        &self.groups
    }

    /// Adds the config file's schedules.
    pub fn set_file_schedules(&mut self, schedules: Vec<crate::schedule::Schedule>) {
        self.schedules = schedules;
    }

    /// The config file's schedules, in file order.
    pub fn file_schedules(&self) -> &[crate::schedule::Schedule] {
        &self.schedules
    }

    /// Sets the config file's notifiers.
    pub fn set_notifiers(&mut self, notifiers: Vec<crate::notify::Notifier>) {
        self.notifiers = notifiers;
    }

    /// The config file's notifiers, in file order.
    pub fn notifiers(&self) -> &[crate::notify::Notifier] {
        &self.notifiers
    }

    /// Removes a type; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.types.remove(name).is_some()
    }

    /// Looks up a type, with a "did you mean" on a miss.
    pub fn get(&self, name: &str) -> Result<&JobType> {
        self.types.get(name).ok_or_else(|| Error::UnknownJobType {
            name: name.to_string(),
            suggestion: suggest(name, self.types.keys().map(String::as_str)),
        })
    }

    /// Whether runs of `name` may be re-queued after a lost worker.
    pub fn is_retry_safe(&self, name: &str) -> bool {
        self.types.get(name).is_some_and(|t| t.retry_safe)
    }

    /// The names of retry-safe types.
    pub fn retry_safe_names(&self) -> Vec<String> {
        self.types
            .values()
            .filter(|t| t.retry_safe)
            .map(|t| t.name.clone())
            .collect()
    }

    /// Every type, sorted by name, for listings and forms.
    pub fn infos(&self) -> Vec<JobTypeInfo> {
        self.types
            .values()
            .map(|t| JobTypeInfo {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.params.clone(),
                retry_safe: t.retry_safe,
                policy: self.policy(&t.name).to_json(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
