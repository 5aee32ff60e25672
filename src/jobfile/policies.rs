//! The config file's `[policies.TYPE]` (with `[policies.TYPE.retry]`) and
//! `[groups.NAME]` tables turned into [`Policy`] and [`Group`] values on
//! the registry. A file key overrides the same setting made in Rust; keys
//! the file leaves out keep it. Every problem is recorded with its line.

use std::time::Duration;

use toml::de::DeValue;

use super::walk::{Report, Section, as_map, as_section};
use crate::error::suggest;
use crate::policies::{Backoff, Group, Retry};
use crate::registry::Registry;

const POLICY_KEYS: &[&str] = &[
    "timeout_secs",
    "max_running",
    "group",
    "priority",
    "retry",
    "unique",
];
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "backoff",
    "initial_secs",
    "max_secs",
    "jitter",
    "on_exit_codes",
    "any_error",
];
const GROUP_KEYS: &[&str] = &["max_running"];

/// Reads `[groups]` into the registry.
pub fn groups(report: &mut Report<'_>, table: &Section<'_, '_>, registry: &mut Registry) {
    for (name, value) in table.entries() {
        let loc = table.at(name);
        let before = report.problems.len();
        let Some(g) = as_section(report, &loc, value, GROUP_KEYS) else {
            continue;
        };
        let max = positive(report, &g, "max_running");
        if max.is_none() && g.raw("max_running").is_none() {
            report.add(
                &g.at("max_running"),
                Some(&g.span),
                "is required (how many runs of the group's types may run at once)",
            );
        }
        if let Some(max_running) = max.filter(|_| report.problems.len() == before) {
            registry.set_group(name, Group { max_running });
        }
    }
}

/// Reads `[policies]` into the registry. `commands` are the file's command
/// job types: their retries cover any failure unless told otherwise.
pub fn policies(
    report: &mut Report<'_>,
    table: &Section<'_, '_>,
    registry: &mut Registry,
    commands: &[String],
) {
    let types: Vec<String> = registry.infos().into_iter().map(|i| i.name).collect();
    for (name, value) in table.entries() {
        let loc = table.at(name);
        if !types.iter().any(|t| t == name) {
            let mut msg = format!("'{name}' is not a job type");
            if let Some(s) = suggest(name, types.iter().map(String::as_str)) {
                msg.push_str(&format!(" (did you mean '{s}'?)"));
            }
            report.add(&loc, Some(&value.span()), msg);
            continue;
        }
        let before = report.problems.len();
        let Some(t) = as_section(report, &loc, value, POLICY_KEYS) else {
            continue;
        };
        let mut policy = registry.policy(name).clone();
        if let Some(secs) = positive(report, &t, "timeout_secs") {
            policy.timeout = Some(Duration::from_secs(secs.into()));
        }
        if let Some(n) = positive(report, &t, "max_running") {
            policy.max_running = Some(n);
        }
        if let Some(p) = t.int(report, "priority") {
            policy.priority = Some(p);
        }
        if let Some(g) = t.string(report, "group") {
            if registry.groups().contains_key(&g) {
                policy.group = Some(g);
            } else {
                let mut msg = format!("group '{g}' is not declared in [groups]");
                if let Some(s) = suggest(&g, registry.groups().keys().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean '{s}'?)"));
                }
                report.add(
                    &t.at("group"),
                    t.raw("group").map(|v| v.span()).as_ref(),
                    msg,
                );
            }
        }
        if let Some(names) = t.strings(report, "unique") {
            let params: Vec<String> = registry
                .get(name)
                .map(|jt| jt.params.iter().map(|p| p.name.clone()).collect())
                .unwrap_or_default();
            policy.unique = Vec::new();
            for (p, span) in names {
                if params.contains(&p) {
                    policy.unique.push(p);
                    continue;
                }
                let mut msg = format!("'{p}' is not a parameter of '{name}'");
                if let Some(s) = suggest(&p, params.iter().map(String::as_str)) {
                    msg.push_str(&format!(" (did you mean '{s}'?)"));
                }
                report.add(&t.at("unique"), Some(&span), msg);
            }
        }
        if let Some(r) = t.table(report, "retry", RETRY_KEYS) {
            let base = policy.retry.take().unwrap_or_else(|| Retry {
                any_error: commands.iter().any(|c| c == name),
                ..Retry::default()
            });
            policy.retry = Some(retry(report, &r, base));
        }
        if report.problems.len() == before {
            registry.set_policy(name, policy);
        }
    }
}

fn retry(report: &mut Report<'_>, r: &Section<'_, '_>, mut out: Retry) -> Retry {
    if let Some(n) = positive(report, r, "max_attempts") {
        out.max_attempts = n;
    }
    if let Some(b) = r.string(report, "backoff") {
        match Backoff::parse(&b) {
            Some(b) => out.backoff = b,
            None => {
                let mut msg = format!("unknown backoff '{b}' (expected fixed or exponential)");
                if let Some(s) = suggest(&b, Backoff::NAMES.iter().copied()) {
                    msg = format!("unknown backoff '{b}' (did you mean '{s}'?)");
                }
                report.add(
                    &r.at("backoff"),
                    r.raw("backoff").map(|v| v.span()).as_ref(),
                    msg,
                );
            }
        }
    }
    if let Some(s) = r.count(report, "initial_secs") {
        out.initial = Duration::from_secs(s);
    }
    if let Some(s) = r.count(report, "max_secs") {
        out.max = Duration::from_secs(s);
    }
    if out.initial > out.max {
        report.add(
            &r.at("initial_secs"),
            r.raw("initial_secs")
                .or(r.raw("max_secs"))
                .map(|v| v.span())
                .as_ref(),
            format!(
                "initial_secs ({}) is greater than max_secs ({})",
                out.initial.as_secs(),
                out.max.as_secs()
            ),
        );
    }
    if let Some(j) = r.boolean(report, "jitter") {
        out.jitter = j;
    }
    if let Some(a) = r.boolean(report, "any_error") {
        out.any_error = a;
    }
    if let Some(codes) = exit_codes(report, r) {
        out.on_exit_codes = codes;
    }
    out
}

/// `on_exit_codes`: a list of integers 0 to 255.
fn exit_codes(report: &mut Report<'_>, r: &Section<'_, '_>) -> Option<Vec<i64>> {
    let v = r.raw("on_exit_codes")?;
    let loc = r.at("on_exit_codes");
    let DeValue::Array(items) = v.get_ref() else {
        report.add(
            &loc,
            Some(&v.span()),
            "expected an array of exit codes (0 to 255)",
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let code = match item.get_ref() {
            DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).ok(),
            _ => None,
        };
        match code.filter(|c| (0..=255).contains(c)) {
            Some(c) => out.push(c),
            None => report.add(
                &format!("{loc}[{i}]"),
                Some(&item.span()),
                "expected an exit code, an integer from 0 to 255",
            ),
        }
    }
    Some(out)
}

/// An integer that must be at least 1.
fn positive(report: &mut Report<'_>, t: &Section<'_, '_>, key: &str) -> Option<u32> {
    let n = t.int(report, key)?;
    match u32::try_from(n) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            let span = t.raw(key).map(|v| v.span());
            report.add(
                &t.at(key),
                span.as_ref(),
                format!("must be a whole number of at least 1, got {n}"),
            );
            None
        }
    }
}

/// Opens a table of user-chosen names (`[policies]`, `[groups]`).
pub fn named<'t, 'i>(
    report: &mut Report<'_>,
    top: &Section<'t, 'i>,
    key: &str,
) -> Option<Section<'t, 'i>> {
    top.raw(key).and_then(|v| as_map(report, key, v))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        super::super::parse(text, Path::new("/tmp"))
            .2
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_full_policy_is_read_and_the_file_overrides_rust() {
        let text = r#"
[jobs.presort]
command = ["true"]

[groups.disk-heavy]
max_running = 1

[policies.presort]
timeout_secs = 3600
max_running = 2
group = "disk-heavy"
priority = 5

[policies.presort.retry]
max_attempts = 5
backoff = "fixed"
initial_secs = 10
max_secs = 60
jitter = true
on_exit_codes = [75]

[policies.demo-known-total.retry]
max_attempts = 3
"#;
        let (registry, _, problems, _) = super::super::parse(text, Path::new("/tmp"));
        assert!(problems.is_empty(), "{problems:?}");
        let p = registry.policy("presort");
        assert_eq!(p.timeout, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(p.max_running, Some(2));
        assert_eq!(p.group.as_deref(), Some("disk-heavy"));
        assert_eq!(p.priority, Some(5));
        let r = p.retry.as_ref().unwrap();
        assert_eq!(
            (r.max_attempts, r.backoff, r.jitter, r.on_exit_codes.clone()),
            (5, crate::policies::Backoff::Fixed, true, vec![75])
        );
        assert!(r.any_error, "a command retries any failure by default");
        let d = registry.policy("demo-known-total").retry.clone().unwrap();
        assert!(!d.any_error, "a Rust job retries only marked errors");
        assert_eq!(registry.groups()["disk-heavy"].max_running, 1);
    }

    #[test]
    fn every_problem_has_its_line_and_a_suggestion() {
        let text = "[groups.disk]\nmax_running = 0\n\n[policies.demo-known-totl]\nmax_running = 1\n\n[policies.prune-history]\ngroup = \"dsk\"\nmax_runing = 2\n\n[policies.prune-history.retry]\nbackoff = \"exponental\"\ninitial_secs = 100\nmax_secs = 10\non_exit_codes = [75, 300]\n";
        assert_eq!(
            problems(text),
            vec![
                "line 2: groups.disk.max_running: must be a whole number of at least 1, got 0",
                "line 4: policies.demo-known-totl: 'demo-known-totl' is not a job type (did you mean 'demo-known-total'?)",
                "line 8: policies.prune-history.group: group 'dsk' is not declared in [groups]",
                "line 9: policies.prune-history.max_runing: unknown key 'max_runing' (did you mean 'max_running'?)",
                "line 12: policies.prune-history.retry.backoff: unknown backoff 'exponental' (did you mean 'exponential'?)",
                "line 13: policies.prune-history.retry.initial_secs: initial_secs (100) is greater than max_secs (10)",
                "line 15: policies.prune-history.retry.on_exit_codes[1]: expected an exit code, an integer from 0 to 255",
            ]
        );
    }

    #[test]
    fn unique_names_declared_parameters() {
        assert_eq!(
            problems("[policies.demo-known-total]\nunique = [\"count\", \"dela_ms\"]\n"),
            vec![
                "line 2: policies.demo-known-total.unique: 'dela_ms' is not a parameter of 'demo-known-total' (did you mean 'delay_ms'?)"
            ]
        );
    }
}
