//! The `parameters` of a `[jobs.NAME]` table, and how they fit the
//! command's argv placeholders: each declared parameter checked key by key,
//! every problem recorded with its location.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeValue;

use super::valid_name;
use crate::command::{self, Arg, CommandSpec};
use crate::jobfile::walk::{Report, Section, as_map, as_section};
use crate::registry::{ParamKind, ParamSpec, Pattern};

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

pub(super) fn parameters(report: &mut Report<'_>, t: &Section<'_, '_>) -> Vec<ParamSpec> {
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
pub(super) fn check_argv_params(
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
