//! One `[schedules.NAME]` table of the config file turned into a
//! [`Schedule`]: the cron expression (with the place of an error), the
//! zone (with "did you mean"), the job and its parameters checked against
//! the registry, every problem recorded with its line.

use serde_json::Map;
use toml::Spanned;
use toml::de::DeValue;

use super::walk::{Report, as_map, as_section};
use crate::registry::Registry;
use crate::schedule::{self, CronExpr, Missed, Overlap, Schedule, Source};

const SCHEDULE_KEYS: &[&str] = &[
    "job",
    "cron",
    "timezone",
    "parameters",
    "missed",
    "max_catch_up",
    "overlap",
    "enabled",
];

/// Reads `[schedules.NAME]`; None when it has problems (already reported).
pub fn schedule(
    report: &mut Report<'_>,
    name: &str,
    value: &Spanned<DeValue<'_>>,
    registry: &Registry,
) -> Option<Schedule> {
    let loc = format!("schedules.{name}");
    let before = report.problems.len();
    if let Err(m) = schedule::check_name(name) {
        report.add(&loc, Some(&value.span()), m);
    }
    let t = as_section(report, &loc, value, SCHEDULE_KEYS)?;
    let span_of = |key: &str| t.raw(key).map(|v| v.span());

    let job = t.string(report, "job");
    if job.is_none() && t.raw("job").is_none() {
        report.add(
            &t.at("job"),
            Some(&t.span),
            "is required (the job type to run)",
        );
    }
    let cron_text = t.string(report, "cron");
    if cron_text.is_none() && t.raw("cron").is_none() {
        report.add(
            &t.at("cron"),
            Some(&t.span),
            "is required (5 fields, or 6 with seconds first, or @hourly/@daily/...)",
        );
    }
    let cron = cron_text.and_then(|c| match CronExpr::parse(&c) {
        Ok(c) => Some(c),
        Err(e) => {
            report.add(
                &t.at("cron"),
                span_of("cron").as_ref(),
                format!("'{c}': {e}"),
            );
            None
        }
    });
    let zone = match t.string(report, "timezone") {
        None => Some(schedule::Tz::UTC),
        Some(z) => match schedule::parse_zone(&z) {
            Ok(z) => Some(z),
            Err(m) => {
                report.add(&t.at("timezone"), span_of("timezone").as_ref(), m);
                None
            }
        },
    };
    let missed = choice(report, &t, "missed", Missed::parse).unwrap_or(Missed::Skip);
    let overlap = choice(report, &t, "overlap", Overlap::parse).unwrap_or(Overlap::Skip);
    let max_catch_up = t
        .int(report, "max_catch_up")
        .map(schedule::check_catch_up)
        .unwrap_or(Ok(schedule::DEFAULT_CATCH_UP))
        .map_err(|m| report.add(&t.at("max_catch_up"), span_of("max_catch_up").as_ref(), m))
        .ok();
    let enabled = t.boolean(report, "enabled").unwrap_or(true);
    let mut parameters = Map::new();
    if let Some(p) = t
        .raw("parameters")
        .and_then(|v| as_map(report, &t.at("parameters"), v))
    {
        for (key, _) in p.entries() {
            if let Some(v) = p.scalar(report, key) {
                parameters.insert(key.to_string(), v);
            }
        }
    }
    if let (Some(c), Some(z)) = (&cron, zone)
        && let Err(m) = schedule::check_reachable(c, z)
    {
        report.add(&t.at("cron"), span_of("cron").as_ref(), m);
    }
    if let Some(job) = &job {
        match registry.get(job) {
            Err(e) => report.add(&t.at("job"), span_of("job").as_ref(), e.to_string()),
            Ok(jt) => {
                if let Err(e) = jt.validate(&parameters) {
                    let span = span_of("parameters").unwrap_or(t.span.clone());
                    report.add(&t.at("parameters"), Some(&span), e.to_string());
                }
            }
        }
    }
    if report.problems.len() > before {
        return None;
    }
    Some(Schedule {
        name: name.to_string(),
        job: job?,
        cron: cron?,
        zone: zone?,
        parameters,
        missed,
        max_catch_up: max_catch_up?,
        overlap,
        enabled,
        source: Source::File,
    })
}

fn choice<T>(
    report: &mut Report<'_>,
    t: &super::walk::Section<'_, '_>,
    key: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = t.string(report, key)?;
    match parse(&text) {
        Ok(v) => Some(v),
        Err(m) => {
            let span = t.raw(key).map(|v| v.span());
            report.add(&t.at(key), span.as_ref(), m);
            None
        }
    }
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
    fn a_valid_schedule_is_registered() {
        let text = r#"
[schedules.nightly-backup]
job = "backup-database"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
parameters = { path = "/var/backups/jobmgr.db" }
missed = "latest"
overlap = "queue"
"#;
        let (registry, _, problems, _) = super::super::parse(text, Path::new("/tmp"));
        assert!(problems.is_empty(), "{problems:?}");
        let s = &registry.file_schedules()[0];
        assert_eq!(s.name, "nightly-backup");
        assert_eq!(s.zone.name(), "Europe/Berlin");
        assert_eq!(s.missed, crate::schedule::Missed::Latest);
        assert_eq!(s.overlap, crate::schedule::Overlap::Queue);
        assert_eq!(s.max_catch_up, 10);
        assert!(s.enabled);
    }

    #[test]
    fn every_problem_has_its_line() {
        let text = "[schedules.a]\njob = \"backup-databse\"\ncron = \"30 2 * * x\"\n\
                    timezone = \"Europe/Berln\"\nmissed = \"lates\"\nmax_catch_up = 0\nrepeat = 1\n\n\
                    [schedules.b]\njob = \"demo-known-total\"\ncron = \"@daily\"\nparameters = { nope = 1 }\n";
        assert_eq!(
            problems(text),
            [
                "line 2: schedules.a.job: unknown job type 'backup-databse' (did you mean 'backup-database'?)",
                "line 3: schedules.a.cron: '30 2 * * x': field 5 at column 10: day of week 'x': \
                 has a character not allowed in this field",
                "line 4: schedules.a.timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
                "line 5: schedules.a.missed: unknown value 'lates' (did you mean 'latest'?)",
                "line 6: schedules.a.max_catch_up: must be between 1 and 500, got 0",
                "line 7: schedules.a.repeat: unknown key 'repeat' (expected one of: job, cron, timezone, \
                 parameters, missed, max_catch_up, overlap, enabled)",
                "line 12: schedules.b.parameters: parameter 'nope': unknown parameter for job type 'demo-known-total'",
            ]
        );
    }
}
