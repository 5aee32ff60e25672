//! The job-type config file (`jobmgr.toml` beside the database, or
//! `--config`/`JOBMGR_CONFIG`): command job types and which built-ins are
//! on. Reading it checks everything and reports every problem with its
//! location; [`build_registry`] is the one function the commands call.
//! The file is read over the job types compiled into the program (the
//! built-ins, plus a program's own Rust types when it runs
//! [`crate::run_with`]), so `[policies.X]` and `[builtins]` know them.

mod job;
mod notify;
mod policies;
mod retention;
mod schedule;
pub mod walk;

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use crate::config::{Retention, Settings};
use crate::error::{Error, Result, suggest};
use crate::jobs;
use crate::registry::{JobType, Registry};
pub use walk::Problem;
use walk::{Report, Section, as_map};

const TOP_KEYS: &[&str] = &[
    "builtins",
    "jobs",
    "retention",
    "schedules",
    "policies",
    "groups",
    "notify",
];
const BUILTIN_KEYS: &[&str] = &["enabled", "demos"];

/// The outcome of reading the config file.
pub struct Checked {
    /// The file looked at.
    pub path: PathBuf,
    /// False when the default file is absent (built-ins only).
    pub exists: bool,
    /// Every problem found; the registry is only usable when empty.
    pub problems: Vec<Problem>,
    /// Built-ins (as selected) plus the file's command job types.
    pub registry: Registry,
    /// Names of the command job types the file declares.
    pub command_jobs: Vec<String>,
    /// `[retention]`, with the defaults for what it leaves out.
    pub retention: Retention,
}

/// Reads and checks the config file `settings` points at, over the
/// compiled-in job types `base`.
pub fn check(settings: &Settings, base: &Registry) -> Result<Checked> {
    let (path, explicit) = settings.config_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Checked {
                path,
                exists: false,
                problems: Vec::new(),
                registry: base.clone(),
                command_jobs: Vec::new(),
                retention: Retention::default(),
            });
        }
        Err(e) => return Err(Error::io("read config file", &path)(e)),
    };
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
    let (registry, command_jobs, problems, retention) = parse_over(&text, &base_dir, base);
    Ok(Checked {
        path,
        exists: true,
        problems,
        registry,
        command_jobs,
        retention,
    })
}

/// The registry the commands use: the compiled-in types `base` as
/// selected plus the file's job types. An invalid file is an error listing
/// every problem.
pub fn build_registry(settings: &Settings, base: &Registry) -> Result<Registry> {
    let checked = check(settings, base)?;
    if checked.problems.is_empty() {
        Ok(checked.registry)
    } else {
        Err(Error::Config(describe(&checked)))
    }
}

/// All problems of `checked`, one per line, under the file's name.
pub fn describe(checked: &Checked) -> String {
    let mut out = format!(
        "{} has {} problem(s):",
        checked.path.display(),
        checked.problems.len()
    );
    for p in &checked.problems {
        out.push_str(&format!("\n  {p}"));
    }
    out
}

/// The worker's `[retention]` settings. The worker has already refused an
/// invalid file when it built its registry from the same file.
pub fn retention(settings: &Settings, base: &Registry) -> Result<Retention> {
    let checked = check(settings, base)?;
    if checked.problems.is_empty() {
        Ok(checked.retention)
    } else {
        Err(Error::Config(describe(&checked)))
    }
}

/// [`parse_over`] the built-in job types.
#[cfg(test)]
pub fn parse(text: &str, base_dir: &Path) -> (Registry, Vec<String>, Vec<Problem>, Retention) {
    parse_over(text, base_dir, &jobs::builtin_registry())
}

/// Parses `text` over the compiled-in job types `base`: returns the
/// registry, the command job names, the problems and the retention
/// settings.
pub fn parse_over(
    text: &str,
    base_dir: &Path,
    base: &Registry,
) -> (Registry, Vec<String>, Vec<Problem>, Retention) {
    let mut report = Report::new(text);
    let mut registry = base.clone();
    let mut names = Vec::new();
    let doc = match DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span();
            report.add("", span.as_ref(), e.message().trim().to_string());
            return (registry, names, report.problems, Retention::default());
        }
    };
    let top = Section::new(&mut report, "", doc.get_ref(), doc.span(), TOP_KEYS);
    if let Some(b) = top.table(&mut report, "builtins", BUILTIN_KEYS) {
        select_builtins(&mut report, &b, &mut registry);
    }
    let retention = top
        .table(&mut report, "retention", retention::KEYS)
        .map(|r| retention::read(&mut report, &r))
        .unwrap_or_default();
    let builtin_names: Vec<String> = base.infos().into_iter().map(|i| i.name).collect();
    let mut job_types: Vec<JobType> = Vec::new();
    if let Some(jobs_table) = top.raw("jobs").and_then(|v| as_map(&mut report, "jobs", v)) {
        for (name, value) in jobs_table.entries() {
            if builtin_names.iter().any(|b| b == name) {
                report.add(
                    &jobs_table.at(name),
                    Some(&value.span()),
                    "this name belongs to a built-in job type; choose another",
                );
                continue;
            }
            if let Some(t) = job::job_type(&mut report, name, value, base_dir) {
                job_types.push(t);
            }
        }
    }
    for t in job_types {
        names.push(t.name.clone());
        registry.register(t);
    }
    // After the job types, groups before the policies that name them.
    if let Some(g) = policies::named(&mut report, &top, "groups") {
        policies::groups(&mut report, &g, &mut registry);
    }
    if let Some(p) = policies::named(&mut report, &top, "policies") {
        policies::policies(&mut report, &p, &mut registry, &names);
    }
    // After the job types: a schedule is checked against them.
    if let Some(table) = top
        .raw("schedules")
        .and_then(|v| as_map(&mut report, "schedules", v))
    {
        let found = table
            .entries()
            .filter_map(|(name, v)| schedule::schedule(&mut report, name, v, &registry))
            .collect();
        registry.set_file_schedules(found);
    }
    // After the job types: a notifier's `jobs` are checked against them.
    let notifiers = notify::read(&mut report, &top, &registry, base_dir);
    registry.set_notifiers(notifiers);
    // In file order; problems without a line (whole-table ones) last.
    report
        .problems
        .sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    (registry, names, report.problems, retention)
}

fn select_builtins(report: &mut Report<'_>, b: &Section<'_, '_>, registry: &mut Registry) {
    let all: Vec<String> = registry.infos().into_iter().map(|i| i.name).collect();
    if let Some(enabled) = b.strings(report, "enabled") {
        for (name, span) in &enabled {
            if !all.contains(name) {
                let mut msg = format!("'{name}' is not a built-in job type");
                match suggest(name, all.iter().map(String::as_str)) {
                    Some(s) => msg.push_str(&format!(" (did you mean '{s}'?)")),
                    None => msg.push_str(&format!(" (built-ins: {})", all.join(", "))),
                }
                report.add(&b.at("enabled"), Some(span), msg);
            }
        }
        for name in &all {
            if !enabled.iter().any(|(n, _)| n == name) {
                registry.remove(name);
            }
        }
    }
    if b.boolean(report, "demos") == Some(false) {
        for name in jobs::DEMO_TYPES {
            registry.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse(text, Path::new("/tmp"))
            .2
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_valid_file_registers_command_jobs() {
        let text = r#"
[builtins]
demos = false

[jobs.presort]
description = "Sorts a feed"
command = ["python3", "presort.py", "--input", "{param:input}"]
env = ["PATH"]
timeout_secs = 60

[jobs.presort.parameters.input]
type = "path"
required = true

[jobs.presort.parameters.limit]
type = "integer"
default = 10
min = 1
max = 100
"#;
        let (registry, names, problems, _) = parse(text, Path::new("/tmp"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(names, vec!["presort".to_string()]);
        assert!(registry.get("presort").is_ok());
        assert!(registry.get("demo-known-total").is_err());
        assert!(registry.get("prune-history").is_ok());
    }

    #[test]
    fn reports_every_problem_with_its_place() {
        let text = "[jobs.a]\ncomand = [\"x\"]\n\n[jobs.a.parameters.limit]\ntype = \"integr\"\nmin = \"one\"\n";
        let got = problems(text);
        assert_eq!(
            got,
            vec![
                "line 1: jobs.a.command: is required (the program and its arguments as a list)",
                "line 2: jobs.a.comand: unknown key 'comand' (did you mean 'command'?)",
                "line 5: jobs.a.parameters.limit.type: unknown type 'integr' (did you mean 'integer'?)",
                "line 6: jobs.a.parameters.limit.min: expected an integer, got a string",
            ]
        );
    }

    #[test]
    fn refuses_spliced_and_unknown_placeholders() {
        let got = problems("[jobs.a]\ncommand = [\"x\", \"--n={param:n}\", \"{param:m}\"]\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("jobs.a.command[1]: '--n={param:n}' mixes a placeholder"));
        assert!(got[1].contains("jobs.a.command[2]: placeholder names unknown parameter 'm'"));
    }
}
