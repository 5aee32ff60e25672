//! `[[notify]]`: who hears about which events. Each entry names its
//! events (`on`), optionally the job types it cares about (`jobs`), and
//! exactly one target: `webhook = "http[s]://..."` (with `ca_file` for an
//! https receiver whose CA is not one of Mozilla's) or `command = [...]`.
//! Every problem is recorded with its line and a "did you mean".

use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::walk::{Report, Section, as_section};
use crate::error::suggest;
use crate::notify::command::{NotifyCommand, TIMEOUT_SECS};
use crate::notify::http::{Url, Webhook};
use crate::notify::tls::Trust;
use crate::notify::{Event, Notifier, OVERDUE_MINUTES, Target};
use crate::registry::Registry;

const KEYS: &[&str] = &[
    "name",
    "on",
    "jobs",
    "webhook",
    "ca_file",
    "command",
    "env",
    "timeout_secs",
    "overdue_minutes",
    "public_url",
];

/// A year of minutes: the longest `overdue_minutes`.
const MAX_OVERDUE_MINUTES: u64 = 525_600;
/// A day: the longest `timeout_secs`.
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Reads the `notify` array into notifiers; an entry with a problem is
/// left out (the file is refused anyway).
pub(super) fn read(
    report: &mut Report<'_>,
    top: &Section<'_, '_>,
    registry: &Registry,
    base_dir: &Path,
) -> Vec<Notifier> {
    let Some(v) = top.raw("notify") else {
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        report.add(
            "notify",
            Some(&v.span()),
            "expected an array of tables: write each entry as [[notify]]",
        );
        return Vec::new();
    };
    let mut out: Vec<Notifier> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let loc = format!("notify[{i}]");
        let before = report.problems.len();
        let Some(s) = as_section(report, &loc, item, KEYS) else {
            continue;
        };
        let n = entry(report, &s, i, registry, base_dir);
        if let Some(n) = n.filter(|_| report.problems.len() == before) {
            if out.iter().any(|o| o.name == n.name) {
                report.add(
                    &s.at("name"),
                    Some(&s.span),
                    format!("another [[notify]] entry is already named '{}'", n.name),
                );
                continue;
            }
            out.push(n);
        }
    }
    out
}

fn entry(
    report: &mut Report<'_>,
    s: &Section<'_, '_>,
    i: usize,
    registry: &Registry,
    base_dir: &Path,
) -> Option<Notifier> {
    let name = match s.string(report, "name") {
        Some(n) if valid_name(&n) => n,
        Some(n) => {
            report.add(
                &s.at("name"),
                s.raw("name").map(|v| v.span()).as_ref(),
                format!("'{n}' is not a valid name (letters, digits, '.', '_', '-')"),
            );
            return None;
        }
        None => format!("notify-{}", i + 1),
    };
    let on = events(report, s);
    let jobs = s.strings(report, "jobs").map(|list| {
        let types: Vec<&str> = registry.names().collect();
        for (j, span) in &list {
            if !types.contains(&j.as_str()) {
                let mut msg = format!("'{j}' is not a job type");
                if let Some(x) = suggest(j, types.iter().copied()) {
                    msg.push_str(&format!(" (did you mean '{x}'?)"));
                }
                report.add(&s.at("jobs"), Some(span), msg);
            }
        }
        list.into_iter().map(|(j, _)| j).collect::<Vec<_>>()
    });
    let target = target(report, s, base_dir)?;
    let overdue =
        bounded(report, s, "overdue_minutes", MAX_OVERDUE_MINUTES).unwrap_or(OVERDUE_MINUTES);
    if s.raw("overdue_minutes").is_some() && !on.contains(&Event::RunOverdue) {
        report.add(
            &s.at("overdue_minutes"),
            s.raw("overdue_minutes").map(|v| v.span()).as_ref(),
            "applies to run_overdue, which 'on' does not name",
        );
    }
    let public_url = s.string(report, "public_url");
    if let Some(u) = &public_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        report.add(
            &s.at("public_url"),
            s.raw("public_url").map(|v| v.span()).as_ref(),
            format!("'{u}' must start with http:// or https://"),
        );
    }
    Some(Notifier {
        name,
        on,
        jobs,
        target,
        overdue: Duration::from_secs(overdue * 60),
        public_url,
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `on`: a non-empty list of known events.
fn events(report: &mut Report<'_>, s: &Section<'_, '_>) -> Vec<Event> {
    let names: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
    let Some(list) = s.strings(report, "on") else {
        if s.raw("on").is_none() {
            report.add(
                &s.at("on"),
                Some(&s.span),
                format!(
                    "is required (the events to notify about: {})",
                    names.join(", ")
                ),
            );
        }
        return Vec::new();
    };
    if list.is_empty() {
        report.add(
            &s.at("on"),
            s.raw("on").map(|v| v.span()).as_ref(),
            format!("names no event (expected some of: {})", names.join(", ")),
        );
    }
    let mut out = Vec::new();
    for (e, span) in list {
        match Event::parse(&e) {
            Some(ev) if !out.contains(&ev) => out.push(ev),
            Some(_) => {}
            None => {
                let mut msg = format!("unknown event '{e}'");
                match suggest(&e, names.iter().copied()) {
                    Some(x) => msg.push_str(&format!(" (did you mean '{x}'?)")),
                    None => msg.push_str(&format!(" (expected one of: {})", names.join(", "))),
                }
                report.add(&s.at("on"), Some(&span), msg);
            }
        }
    }
    out
}

/// Exactly one of `webhook` and `command`.
fn target(report: &mut Report<'_>, s: &Section<'_, '_>, base_dir: &Path) -> Option<Target> {
    let timeout = bounded(report, s, "timeout_secs", MAX_TIMEOUT_SECS);
    let env = s.strings(report, "env");
    match (s.raw("webhook"), s.raw("command")) {
        (Some(_), Some(c)) => {
            report.add(
                &s.at("command"),
                Some(&c.span()),
                "give either webhook or command, not both",
            );
            None
        }
        (None, None) => {
            report.add(
                &s.loc,
                Some(&s.span),
                "needs a target: webhook = \"https://...\" or command = [\"program\", ...]",
            );
            None
        }
        (Some(w), None) => {
            for key in ["timeout_secs", "env"] {
                if let Some(v) = s.raw(key) {
                    report.add(
                        &s.at(key),
                        Some(&v.span()),
                        "applies to command notifiers only",
                    );
                }
            }
            let url = s.string(report, "webhook")?;
            match Url::parse(&url) {
                Ok(url) => {
                    let trust = trust(report, s, &url, base_dir)?;
                    Some(Target::Webhook(Webhook { url, trust }))
                }
                Err(e) => {
                    report.add(&s.at("webhook"), Some(&w.span()), e);
                    None
                }
            }
        }
        (None, Some(c)) => {
            if let Some(v) = s.raw("ca_file") {
                report.add(
                    &s.at("ca_file"),
                    Some(&v.span()),
                    "applies to https:// webhooks only",
                );
            }
            let argv: Vec<String> = s
                .strings(report, "command")?
                .into_iter()
                .map(|(a, _)| a)
                .collect();
            if argv.first().is_none_or(|p| p.is_empty()) {
                report.add(
                    &s.at("command"),
                    Some(&c.span()),
                    "must name a program: [\"program\", \"arg\", ...]",
                );
                return None;
            }
            Some(Target::Command(NotifyCommand {
                argv,
                workdir: base_dir.to_path_buf(),
                pass_env: env
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(e, _)| e)
                    .collect(),
                timeout: Duration::from_secs(timeout.unwrap_or(TIMEOUT_SECS)),
            }))
        }
    }
}

/// An https webhook's trust: Mozilla's roots and `ca_file` (relative to
/// the config file's folder), read and parsed now so that a bad file is
/// refused with its line. None for http://; an outer None is a problem.
fn trust(
    report: &mut Report<'_>,
    s: &Section<'_, '_>,
    url: &Url,
    base_dir: &Path,
) -> Option<Option<Trust>> {
    let ca_file = s.string(report, "ca_file");
    let span = s.raw("ca_file").map(|v| v.span());
    if !url.is_https() {
        if ca_file.is_some() {
            report.add(
                &s.at("ca_file"),
                span.as_ref(),
                "applies to https:// webhooks only",
            );
            return None;
        }
        return Some(None);
    }
    let path = ca_file.map(|f| base_dir.join(f));
    match Trust::new(path.as_deref()) {
        Ok(t) => Some(Some(t)),
        Err(e) => {
            report.add(&s.at("ca_file"), span.as_ref(), e);
            None
        }
    }
}

/// A whole number from 1 to `max`.
fn bounded(report: &mut Report<'_>, s: &Section<'_, '_>, key: &str, max: u64) -> Option<u64> {
    let n = s.count(report, key)?;
    if n == 0 || n > max {
        report.add(
            &s.at(key),
            s.raw(key).map(|v| v.span()).as_ref(),
            format!("must be between 1 and {max}, got {n}"),
        );
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        let (_, _, problems, _) = super::super::parse(text, Path::new("/tmp"));
        problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_valid_entry_is_read_with_its_defaults() {
        let text = "[[notify]]\non = [\"run_failed\", \"run_overdue\"]\n\
                    webhook = \"http://127.0.0.1:9/hook\"\n\n\
                    [[notify]]\nname = \"pager\"\non = [\"worker_dead\"]\ncommand = [\"true\"]\n";
        let (registry, _, p, _) = super::super::parse(text, Path::new("/tmp"));
        assert!(p.is_empty(), "{p:?}");
        let n = registry.notifiers();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, "notify-1");
        assert_eq!(n[0].overdue.as_secs(), 3600);
        assert_eq!(n[1].name, "pager");
    }

    #[test]
    fn bad_entries_are_reported_with_their_lines() {
        let got = problems(
            "[[notify]]\non = [\"run_faild\"]\njobs = [\"demo-known-totl\"]\n\
             webhook = \"http://x/\"\ncommand = [\"true\"]\n\n\
             [[notify]]\non = [\"disk_low\"]\n\n\
             [[notify]]\non = [\"run_failed\"]\nwebhook = \"https://x/\"\nwebhok = 1\n\
             ca_file = \"jobmgr-no-such-ca.pem\"\n\n\
             [[notify]]\non = [\"run_failed\"]\nwebhook = \"http://x/\"\nca_file = \"ca.pem\"\n",
        );
        assert_eq!(
            got,
            vec![
                "line 2: notify[0].on: unknown event 'run_faild' (did you mean 'run_failed'?)",
                "line 3: notify[0].jobs: 'demo-known-totl' is not a job type (did you mean 'demo-known-total'?)",
                "line 5: notify[0].command: give either webhook or command, not both",
                "line 7: notify[1]: needs a target: webhook = \"https://...\" or command = [\"program\", ...]",
                "line 13: notify[2].webhok: unknown key 'webhok' (did you mean 'webhook'?)",
                "line 14: notify[2].ca_file: read /tmp/jobmgr-no-such-ca.pem: No such file or directory (os error 2)",
                "line 19: notify[3].ca_file: applies to https:// webhooks only",
            ]
        );
    }
}
