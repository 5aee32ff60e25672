//! `[retention]`: how long the worker keeps finished runs, and the disk
//! guard's threshold. Every key is optional; what is absent keeps its
//! default ([`Retention::default`]), and `failed_days` follows
//! `finished_days` unless it is given.

use super::walk::{Report, Section};
use crate::config::Retention;

/// The keys `[retention]` accepts.
pub(super) const KEYS: &[&str] = &[
    "enabled",
    "finished_days",
    "failed_days",
    "max_runs",
    "max_database_mb",
    "disk_free_min_mb",
];

/// Longest horizon accepted: a hundred years.
const MAX_DAYS: u64 = 36_500;

/// Reads the section, recording each bad value in `report`; a bad value
/// keeps its default, so the rest is still checked.
pub(super) fn read(report: &mut Report<'_>, s: &Section<'_, '_>) -> Retention {
    let mut r = Retention::default();
    if let Some(b) = s.boolean(report, "enabled") {
        r.enabled = b;
    }
    let finished = in_range(report, s, "finished_days", 1, MAX_DAYS);
    if let Some(d) = finished {
        r.finished_days = d;
    }
    r.failed_days = in_range(report, s, "failed_days", 1, MAX_DAYS).unwrap_or(r.finished_days);
    r.max_runs = in_range(report, s, "max_runs", 1, u64::MAX);
    r.max_database_mb = in_range(report, s, "max_database_mb", 1, u64::MAX);
    if let Some(mb) = in_range(report, s, "disk_free_min_mb", 0, u64::MAX) {
        r.disk_free_min_mb = mb;
    }
    r
}

/// A whole number between `min` and `max`, or a problem saying so.
fn in_range(
    report: &mut Report<'_>,
    s: &Section<'_, '_>,
    key: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let n = s.count(report, key)?;
    if n < min || n > max {
        let span = s.raw(key).map(|v| v.span());
        let want = if max == u64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        report.add(
            &s.at(key),
            span.as_ref(),
            format!("must be {want}, got {n}"),
        );
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Retention;

    fn parse(text: &str) -> (Retention, Vec<String>) {
        let (_, _, problems, retention) = super::super::parse(text, Path::new("/tmp"));
        (retention, problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn absent_means_the_defaults_and_failed_days_follows_finished_days() {
        assert_eq!(parse("").0, Retention::default());
        let (r, p) = parse("[retention]\nfinished_days = 7\nmax_runs = 1000\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!((r.finished_days, r.failed_days), (7, 7));
        assert_eq!(r.max_runs, Some(1000));
        let (r, _) = parse("[retention]\nfinished_days = 7\nfailed_days = 90\n");
        assert_eq!((r.finished_days, r.failed_days), (7, 90));
    }

    #[test]
    fn bad_values_are_reported_with_their_line() {
        let (_, p) = parse(
            "[retention]\nfinshed_days = 3\nfailed_days = 0\nmax_runs = -1\nenabled = \"yes\"\n",
        );
        assert_eq!(
            p,
            vec![
                "line 2: retention.finshed_days: unknown key 'finshed_days' (did you mean 'finished_days'?)",
                "line 3: retention.failed_days: must be between 1 and 36500, got 0",
                "line 4: retention.max_runs: must not be negative, got -1",
                "line 5: retention.enabled: expected true or false, got a string",
            ]
        );
    }
}
