//! `cancel`, `rerun` and `delete` over a history filter: the filter flags,
//! the count printed first, and the `--yes` rule (more than one matching
//! run is acted on only with `--yes`; without it nothing changes).

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::output::{outln, print_json};
use super::runs::parse_status;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::manager::{Actor, BulkAction, BulkRequest, BulkRunner, BulkState, Manager};
use crate::query::RunFilter;

/// The filter of a bulk `cancel`, `rerun` or `delete`.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Every run in these statuses, comma-separated (e.g. FAILED,CANCELLED).
    #[arg(long, conflicts_with = "id")]
    pub status: Option<String>,
    /// Every run of this job type.
    #[arg(long, conflicts_with = "id")]
    pub name: Option<String>,
    /// Every run with this text in its name, parameters or error.
    #[arg(short = 'q', long, conflicts_with = "id")]
    pub search: Option<String>,
    /// Only runs created at or after this date or UTC time (2026-12-01, 2026-12-01T08:00:00Z).
    #[arg(long, conflicts_with = "id")]
    pub since: Option<String>,
    /// Only runs created before this date or UTC time.
    #[arg(long, conflicts_with = "id")]
    pub until: Option<String>,
    /// Act when more than one run matches (without it: print the count, change nothing).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Every run the action applies to, with no filter (a delete without a filter needs it).
    #[arg(long, conflicts_with = "id")]
    pub all: bool,
}

impl BulkArgs {
    /// Whether any filter flag was given.
    pub fn has_filter(&self) -> bool {
        self.status.is_some()
            || self.name.is_some()
            || self.search.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.all
    }

    fn filter(&self) -> Result<RunFilter> {
        let statuses = match &self.status {
            Some(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(parse_status)
                .collect::<Result<Vec<_>>>()?,
            None => vec![],
        };
        let time = |flag: &str, t: &Option<String>| -> Result<Option<String>> {
            t.as_deref()
                .map(|t| {
                    Timestamp::parse(t).map(Timestamp::to_text).ok_or_else(|| {
                        Error::Invalid(format!(
                            "--{flag} must be a date or UTC time (2026-12-01, \
                             2026-12-01T08:00:00Z), got '{t}'"
                        ))
                    })
                })
                .transpose()
        };
        Ok(RunFilter {
            statuses,
            name: self.name.clone(),
            q: self.search.clone(),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            ..RunFilter::default()
        })
    }
}

/// The verb of the messages.
fn verb(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Cancel => "cancel",
        BulkAction::Rerun => "re-run",
        BulkAction::Delete => "delete",
    }
}

/// How often the progress line is printed while an action runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Carries out `action` over the runs `args` selects, here in the
/// foreground: the action is recorded first (so `GET /api/jobs/bulk/ID`
/// and the page see it), its progress goes to stderr once a second, the
/// final count to stdout. Killed mid-way, it is marked INTERRUPTED with
/// what it did, and the same command again finishes the rest.
pub fn run(m: &Manager, action: BulkAction, args: &BulkArgs, json: bool) -> Result<i32> {
    if !args.has_filter() {
        return Err(Error::Invalid(format!(
            "give a run ID, or a filter (--status, --name, -q, --since, --until) to {} \
             every run it matches",
            verb(action)
        )));
    }
    let req = BulkRequest {
        action,
        filter: args.filter()?,
        all: args.all,
    };
    let n = m.bulk_preview(&req)?;
    if n.matched > 1 && !args.yes {
        let many = if n.capped {
            format!("more than {}", n.matched)
        } else {
            n.matched.to_string()
        };
        return Err(Error::Invalid(format!(
            "{many} runs match; nothing was changed: add --yes to {} them all",
            verb(action)
        )));
    }
    if n.matched == 0 {
        if json {
            print_json(&json!({"action": action.as_str(), "matched": 0, "acted": 0}));
        } else {
            outln!("no runs match; nothing to {}", verb(action));
        }
        return Ok(0);
    }
    // Actions of CLI processes that died are marked INTERRUPTED first, so
    // the history of actions tells the truth before this one joins it.
    m.bulk_recover(false)?;
    let started = m.bulk_start(&req, Trigger::Cli, &Actor::cli(), BulkRunner::Cli)?;
    let total = started.total;
    if !json {
        outln!(
            "{total} matching run{} to {} (bulk action {})",
            if total == 1 { "" } else { "s" },
            verb(action),
            started.id
        );
    }
    let mut shown = Instant::now();
    let report = m.bulk_carry_on(
        started.id,
        &mut |d| {
            std::thread::sleep(d);
            true
        },
        &mut |v| {
            if !json && shown.elapsed() >= PROGRESS_EVERY && v.status == BulkState::Running {
                eprintln!("{}: {} of {} runs done", verb(action), v.done, v.total);
                shown = Instant::now();
            }
        },
    )?;
    if json {
        print_json(&report);
        return Ok(0);
    }
    let c = &report.counts;
    match action {
        BulkAction::Cancel => outln!(
            "{} cancelled, {} running asked to stop",
            c.cancelled,
            c.cancel_requested
        ),
        BulkAction::Rerun => {
            outln!("{} re-run", c.acted);
            if c.skipped > 0 {
                outln!(
                    "{} skipped: their job type is gone or their parameters no longer fit it",
                    c.skipped
                );
            }
        }
        BulkAction::Delete => outln!(
            "{} deleted, with {} log lines",
            c.acted,
            c.log_lines_deleted
        ),
    }
    Ok(0)
}
