//! One `[jobs.NAME]` table of the config file turned into a command job
//! type: its parameters, argv, environment and limits, every problem
//! recorded with its location.

mod params;

use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Report, Section, as_map, as_section};
use crate::command::{self, Arg, CommandSpec};
use crate::config;
use crate::registry::JobType;
use params::{check_argv_params, parameters};

const JOB_KEYS: &[&str] = &[
    "description",
    "command",
    "parameters",
    "workdir",
    "env",
    "set_env",
    "timeout_secs",
    "grace_secs",
    "retry_safe",
    "max_log_lines",
];

/// Names of jobs and parameters: letters, digits, `_` and `-`.
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Environment variable names as POSIX shells accept them.
fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads `[jobs.NAME]`; None when it has problems (already reported).
pub fn job_type(
    report: &mut Report<'_>,
    name: &str,
    value: &Spanned<DeValue<'_>>,
    base_dir: &Path,
) -> Option<JobType> {
    let loc = format!("jobs.{name}");
    let before = report.problems.len();
    if !valid_name(name, 64) {
        report.add(
            &loc,
            Some(&value.span()),
            "a job name uses letters, digits, '.', '_' and '-' (at most 64 characters)",
        );
    }
    let t = as_section(report, &loc, value, JOB_KEYS)?;
    let description = t.string(report, "description").unwrap_or_default();
    let params = parameters(report, &t);
    let mut spec = command_spec(report, &t, base_dir);
    let retry_safe = t.boolean(report, "retry_safe").unwrap_or(false);
    let mut params = params;
    check_argv_params(report, &t, &mut spec, &mut params);
    if report.problems.len() > before {
        return None;
    }
    Some(JobType {
        name: name.to_string(),
        description,
        params,
        retry_safe,
        handler: command::handler(spec),
    })
}

/// The command part; problems are reported, and the caller drops the job
/// type if there were any.
fn command_spec(report: &mut Report<'_>, t: &Section<'_, '_>, base_dir: &Path) -> CommandSpec {
    let argv = t.strings(report, "command");
    if t.raw("command").is_none() {
        report.add(
            &t.at("command"),
            Some(&t.span),
            "is required (the program and its arguments as a list)",
        );
    }
    let mut program = String::new();
    let mut args = Vec::new();
    if let Some(argv) = argv {
        if argv.is_empty() {
            report.add(&t.at("command"), None, "must name a program");
        }
        for (i, (element, span)) in argv.iter().enumerate() {
            let loc = format!("{}[{i}]", t.at("command"));
            if i == 0 {
                if element.is_empty() || element.contains(command::PLACEHOLDER_OPEN) {
                    report.add(
                        &loc,
                        Some(span),
                        "the program must be a fixed, non-empty name or path",
                    );
                }
                program = absolute_program(element, base_dir);
                continue;
            }
            match Arg::parse(element) {
                Ok(a) => args.push(a),
                Err(e) => {
                    // Kept as text so later indexes still match argv.
                    report.add(&loc, Some(span), e);
                    args.push(Arg::Literal(element.clone()));
                }
            }
        }
    }
    let workdir = match t.string(report, "workdir") {
        Some(w) if w.is_empty() => {
            report.add(&t.at("workdir"), None, "must not be empty");
            base_dir.to_path_buf()
        }
        Some(w) => base_dir.join(w),
        None => base_dir.to_path_buf(),
    };
    let mut pass_env = Vec::new();
    for (name, span) in t.strings(report, "env").unwrap_or_default() {
        if !valid_env_name(&name) || name.starts_with("JOBMGR_") {
            report.add(
                &t.at("env"),
                Some(&span),
                format!("'{name}' is not a variable name that may be passed (JOBMGR_* are set by jobmgr)"),
            );
        }
        pass_env.push(name);
    }
    let set_env = fixed_env(report, t);
    let timeout = t.count(report, "timeout_secs").map(Duration::from_secs);
    if timeout == Some(Duration::ZERO) {
        report.add(
            &t.at("timeout_secs"),
            None,
            "must be at least 1 (leave it out for no timeout)",
        );
    }
    let grace = t
        .count(report, "grace_secs")
        .unwrap_or(config::COMMAND_GRACE_SECS);
    let max_log_lines = t
        .count(report, "max_log_lines")
        .unwrap_or(config::COMMAND_MAX_LOG_LINES);
    CommandSpec {
        program,
        args,
        dash_params: Vec::new(),
        workdir,
        pass_env,
        set_env,
        timeout,
        grace: Duration::from_secs(grace),
        max_log_lines,
    }
}

/// A relative path with a slash is taken from the config file's directory,
/// so a file can ship beside its scripts; a bare name is looked up in PATH
/// when the job starts.
fn absolute_program(program: &str, base_dir: &Path) -> String {
    if program.contains('/') && !program.starts_with('/') {
        base_dir.join(program).display().to_string()
    } else {
        program.to_string()
    }
}

fn fixed_env(report: &mut Report<'_>, t: &Section<'_, '_>) -> Vec<(String, String)> {
    let Some(s) = t
        .raw("set_env")
        .and_then(|v| as_map(report, &t.at("set_env"), v))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, _) in s.entries() {
        if !valid_env_name(name) || name.starts_with("JOBMGR_") {
            report.add(
                &s.at(name),
                None,
                "not a variable name that may be set (JOBMGR_* are set by jobmgr)",
            );
        } else if let Some(v) = s.string(report, name) {
            out.push((name.to_string(), v));
        }
    }
    out
}
