//! The job-type registry: each type's name, description, declared
//! parameters and handler, and the validation that runs before a run is
//! enqueued, so a bad value is refused before anything is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::{JobContext, JobError};
use crate::error::{Error, Result, suggest};

/// What a job does: called on an executor thread with the run's context.
pub type Handler = Arc<dyn Fn(&JobContext) -> std::result::Result<(), JobError> + Send + Sync>;

/// The declared type of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "choices")]
pub enum ParamKind {
    String,
    Integer,
    Boolean,
    /// One of a fixed list of strings.
    Enum(Vec<String>),
    /// A filesystem path (a non-empty string without NUL bytes).
    Path,
}

/// A declared parameter of a job type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: ParamKind,
    pub required: bool,
    pub default: Option<Value>,
    pub help: String,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub max_length: Option<usize>,
    /// A regular expression the whole text value must match.
    pub pattern: Option<Pattern>,
    /// Whether a value may start with `-`. Command jobs refuse such values
    /// for parameters placed in argv (they would read as options) unless
    /// this is set; everywhere else it is true.
    pub allow_dash: bool,
}

/// A parameter's pattern: the source as written, compiled anchored so it
/// must match the whole value (not just a part of it).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    re: regex::Regex,
}

impl Pattern {
    /// Compiles `source`, anchored at both ends.
    pub fn new(source: &str) -> std::result::Result<Pattern, String> {
        regex::Regex::new(&format!("^(?:{source})$"))
            .map(|re| Pattern {
                source: source.to_string(),
                re,
            })
            .map_err(|e| e.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `s` matches as a whole.
    pub fn matches(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Strings longer than this are refused unless a parameter sets its own limit.
const DEFAULT_MAX_LENGTH: usize = 4096;

impl ParamSpec {
    /// A parameter of `kind` with no default, limits or help.
    pub fn new(name: &str, kind: ParamKind) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            kind,
            required: false,
            default: None,
            help: String::new(),
            min: None,
            max: None,
            max_length: None,
            pattern: None,
            allow_dash: true,
        }
    }

    /// Marks the parameter required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default used when the parameter is absent.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }

    /// Sets the help text shown in forms and `job-types`.
    pub fn help(mut self, h: &str) -> Self {
        self.help = h.into();
        self
    }

    /// Sets inclusive bounds for an integer.
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// Checks and normalises one supplied value (strings from the CLI are
    /// converted to the declared type).
    pub fn check(&self, value: &Value) -> Result<Value> {
        let bad = |message: String| Error::InvalidParameter {
            name: self.name.clone(),
            message,
        };
        match &self.kind {
            ParamKind::Integer => {
                let n = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| bad(format!("expected an integer, got {}", show(value))))?;
                if let Some(min) = self.min.filter(|m| n < *m) {
                    return Err(bad(format!("must be at least {min}, got {n}")));
                }
                if let Some(max) = self.max.filter(|m| n > *m) {
                    return Err(bad(format!("must be at most {max}, got {n}")));
                }
                if n < 0 && !self.allow_dash {
                    return Err(bad(format!(
                        "must not start with '-' (it is passed as a command argument), got {n}"
                    )));
                }
                Ok(Value::from(n))
            }
            ParamKind::Boolean => match value {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
                    "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
                    _ => Err(bad(format!("expected true or false, got {}", show(value)))),
                },
                _ => Err(bad(format!("expected true or false, got {}", show(value)))),
            },
            ParamKind::String | ParamKind::Path | ParamKind::Enum(_) => {
                let s = value
                    .as_str()
                    .ok_or_else(|| bad(format!("expected a string, got {}", show(value))))?;
                self.check_text(s).map_err(bad)?;
                Ok(Value::String(s.to_string()))
            }
        }
    }

    fn check_text(&self, s: &str) -> std::result::Result<(), String> {
        let limit = self.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if s.chars().count() > limit {
            return Err(format!("longer than {limit} characters"));
        }
        // No program can receive a NUL in argv or the environment.
        if s.contains('\0') {
            return Err("must not contain NUL bytes".into());
        }
        if !self.allow_dash && s.starts_with('-') {
            return Err(format!(
                "must not start with '-' (it is passed as a command argument), got {}",
                show(&Value::from(s))
            ));
        }
        if let Some(p) = self.pattern.as_ref().filter(|p| !p.matches(s)) {
            return Err(format!(
                "must match the pattern {}, got {}",
                p.as_str(),
                show(&Value::from(s))
            ));
        }
        match &self.kind {
            ParamKind::Enum(choices) if !choices.iter().any(|c| c == s) => {
                let mut msg = format!("must be one of {}", choices.join(", "));
                if let Some(close) = suggest(s, choices.iter().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean '{close}'?)"));
                }
                Err(msg)
            }
            ParamKind::Path if s.is_empty() => Err("must be a non-empty path".into()),
            _ => Ok(()),
        }
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

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
