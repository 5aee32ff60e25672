//! `cancel`, `rerun` and `delete` over a history filter: the filter flags,
//! the count printed first, and the `--yes` rule (more than one matching
//! run is acted on only with `--yes`; without it nothing changes).

use clap::Args;
use serde_json::json;

use super::output::{outln, print_json};
use super::runs::parse_status;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::manager::{Actor, BulkAction, BulkRequest, Manager};
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

/// Carries out `action` over the runs `args` selects.
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
    if n > 1 && !args.yes {
        return Err(Error::Invalid(format!(
            "{n} runs match; nothing was changed: add --yes to {} them all",
            verb(action)
        )));
    }
    if n == 0 {
        if json {
            print_json(&json!({"action": action.as_str(), "matched": 0, "acted": 0}));
        } else {
            outln!("no runs match; nothing to {}", verb(action));
        }
        return Ok(0);
    }
    if !json {
        outln!(
            "{n} matching run{} to {}",
            if n == 1 { "" } else { "s" },
            verb(action)
        );
    }
    let report = m.bulk(&req, Trigger::Cli, &Actor::cli())?;
    if json {
        print_json(&report);
        return Ok(0);
    }
    match action {
        BulkAction::Cancel => outln!(
            "{} cancelled, {} running asked to stop",
            report.cancelled,
            report.cancel_requested
        ),
        BulkAction::Rerun => {
            outln!("{} re-run", report.acted);
            if report.skipped > 0 {
                outln!(
                    "{} skipped: their job type is gone or their parameters no longer fit it",
                    report.skipped
                );
            }
        }
        BulkAction::Delete => outln!(
            "{} deleted, with {} log lines",
            report.acted,
            report.log_lines_deleted
        ),
    }
    Ok(0)
}
