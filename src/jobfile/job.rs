//! One `[jobs.NAME]` table of the config file turned into a command job
//! type: its parameters, argv, environment and limits, every problem
//! recorded with its location.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Report, Section, as_map, as_section};
use crate::command::{self, Arg, CommandSpec};
use crate::config;
use crate::registry::{JobType, ParamKind, ParamSpec, Pattern};

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

const PARAM_KEYS: &[&str] = &[
    "type",
    "required",
    "default",
    "pattern",
    "min",
    "max",
    "max_length",
    "help",
    "allow_dash",
    "choices",
];

const KINDS: &[&str] = &["string", "integer", "boolean", "enum", "path"];

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

fn parameters(report: &mut Report<'_>, t: &Section<'_, '_>) -> Vec<ParamSpec> {
    let mut out = Vec::new();
    let mut env_names = BTreeMap::new();
    if let Some(v) = t.raw("parameters") {
        let loc = t.at("parameters");
        if let Some(s) = as_map(report, &loc, v) {
            for (name, value) in s.entries() {
                let ploc = s.at(name);
                if !valid_name(name, 64) {
                    report.add(
                        &ploc,
                        Some(&value.span()),
                        "a parameter name uses letters, digits, '.', '_' and '-'",
                    );
                }
                if let Some(other) = env_names.insert(command::param_env_name(name), name) {
                    report.add(
                        &ploc,
                        Some(&value.span()),
                        format!("its environment variable clashes with parameter '{other}'"),
                    );
                }
                if let Some(p) = parameter(report, &ploc, name, value) {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn parameter(
    report: &mut Report<'_>,
    loc: &str,
    name: &str,
    v: &Spanned<DeValue<'_>>,
) -> Option<ParamSpec> {
    let before = report.problems.len();
    let p = as_section(report, loc, v, PARAM_KEYS)?;
    let kind_name = p.string(report, "type");
    if p.raw("type").is_none() {
        report.add(
            loc,
            Some(&p.span),
            format!("'type' is required (one of: {})", KINDS.join(", ")),
        );
    }
    let choices = p
        .strings(report, "choices")
        .map(|c| c.into_iter().map(|(s, _)| s).collect::<Vec<_>>());
    let kind = match kind_name.as_deref() {
        Some("string") => ParamKind::String,
        Some("integer") => ParamKind::Integer,
        Some("boolean") => ParamKind::Boolean,
        Some("path") => ParamKind::Path,
        Some("enum") => match &choices {
            Some(c) if !c.is_empty() => ParamKind::Enum(c.clone()),
            _ => {
                report.add(
                    loc,
                    Some(&p.span),
                    "an enum needs a non-empty 'choices' list",
                );
                ParamKind::String
            }
        },
        Some(other) => {
            let mut msg = format!(
                "unknown type '{other}' (expected one of: {})",
                KINDS.join(", ")
            );
            if let Some(s) = crate::error::suggest(other, KINDS.iter().copied()) {
                msg = format!("unknown type '{other}' (did you mean '{s}'?)");
            }
            report.add(&p.at("type"), p.raw("type").map(|v| v.span()).as_ref(), msg);
            ParamKind::String
        }
        None => ParamKind::String,
    };
    let mut spec = ParamSpec::new(name, kind.clone());
    spec.required = p.boolean(report, "required").unwrap_or(false);
    spec.help = p.string(report, "help").unwrap_or_default();
    spec.min = p.int(report, "min");
    spec.max = p.int(report, "max");
    spec.max_length = p.count(report, "max_length").map(|n| n as usize);
    // Decided per argv use in `check_argv_params`; kept here to apply it.
    spec.allow_dash = p.boolean(report, "allow_dash").unwrap_or(false);
    if let Some(src) = p.string(report, "pattern") {
        match Pattern::new(&src) {
            Ok(pat) => spec.pattern = Some(pat),
            Err(e) => report.add(
                &p.at("pattern"),
                p.raw("pattern").map(|v| v.span()).as_ref(),
                format!("not a valid regular expression: {e}"),
            ),
        }
    }
    let is_text = matches!(
        kind,
        ParamKind::String | ParamKind::Path | ParamKind::Enum(_)
    );
    for (key, applies) in [
        ("min", kind == ParamKind::Integer),
        ("max", kind == ParamKind::Integer),
        ("max_length", is_text),
        ("pattern", is_text),
        ("choices", matches!(kind, ParamKind::Enum(_))),
    ] {
        if !applies
            && p.raw(key).is_some()
            && kind_name.as_deref().is_some_and(|k| KINDS.contains(&k))
        {
            report.add(
                &p.at(key),
                p.raw(key).map(|v| v.span()).as_ref(),
                format!(
                    "does not apply to a {} parameter",
                    kind_name.as_deref().unwrap_or("")
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (spec.min, spec.max)
        && min > max
    {
        report.add(
            &p.at("min"),
            None,
            format!("min ({min}) is greater than max ({max})"),
        );
    }
    if let Some(d) = p.scalar(report, "default") {
        // The default obeys the parameter's own rules (dash aside: the
        // author chose it).
        let mut lenient = spec.clone();
        lenient.allow_dash = true;
        match lenient.check(&d) {
            Ok(v) => spec.default = Some(v),
            Err(e) => report.add(
                &p.at("default"),
                p.raw("default").map(|v| v.span()).as_ref(),
                format!("{e}"),
            ),
        }
    }
    (report.problems.len() == before).then_some(spec)
}

/// Placeholders must name declared parameters that always have a value;
/// parameters not placed in argv may start with `-` freely.
fn check_argv_params(
    report: &mut Report<'_>,
    t: &Section<'_, '_>,
    spec: &mut CommandSpec,
    params: &mut [ParamSpec],
) {
    for (i, a) in spec.args.iter().enumerate() {
        let Arg::Param(name) = a else { continue };
        let loc = format!("{}[{}]", t.at("command"), i + 1);
        let span = match t.raw("command").map(|v| v.get_ref()) {
            Some(DeValue::Array(items)) => items.get(i + 1).map(|v| v.span()),
            _ => None,
        };
        let span = span.as_ref();
        match params.iter().find(|p| &p.name == name) {
            None => {
                let mut msg = format!("placeholder names unknown parameter '{name}'");
                if let Some(s) = crate::error::suggest(name, params.iter().map(|p| p.name.as_str())) {
                    msg.push_str(&format!(" (did you mean '{s}'?)"));
                }
                report.add(&loc, span, msg);
            }
            Some(p) if !p.required && p.default.is_none() => report.add(
                &loc,
                span,
                format!("parameter '{name}' is used in the command, so it must be required or have a default"),
            ),
            Some(_) => {}
        }
    }
    let used: Vec<String> = spec.argv_params().map(str::to_string).collect();
    for p in params.iter_mut() {
        if !used.contains(&p.name) {
            p.allow_dash = true;
        } else if p.allow_dash {
            spec.dash_params.push(p.name.clone());
        }
    }
}
