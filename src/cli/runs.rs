//! The run commands: status, jobs, show, logs, cancel, rerun, delete,
//! cleanup-stalled (enqueue is in `enqueue`; over a filter: see `bulk`).

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::output::{self, outln, print_json};
use super::report;
use super::{Command, enqueue};
use crate::error::{Error, Result};
use crate::job::{JobStatus, LogLevel, Trigger};
use crate::manager::{Actor, BulkAction, CancelResult, Manager, WaitingAction};
use crate::query::LogFilter;
use crate::query::RunFilter;

/// `jobmgr jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only runs in these statuses, comma-separated (SCHEDULED, QUEUED,
    /// RUNNING, COMPLETED, FAILED, CANCELLED), e.g. `FAILED,CANCELLED`.
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs of this job type.
    #[arg(long)]
    pub name: Option<String>,
    /// Text to find in the name, parameters or error.
    #[arg(short = 'q', long)]
    pub search: Option<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Show runs older than this id (the next page).
    #[arg(long)]
    pub before: Option<i64>,
}

/// `jobmgr logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    pub id: i64,
    /// Only lines at this level or above (debug, info, warning, error).
    #[arg(long)]
    pub level: Option<String>,
    /// Only lines whose message contains this text.
    #[arg(short = 'q', long)]
    pub search: Option<String>,
    /// Keep printing new lines until the run finishes.
    #[arg(short, long)]
    pub follow: bool,
}

/// Largest page the history returns.
const MAX_LIMIT: usize = 1000;

/// Refuses a database file that does not exist for the commands that only
/// look at or act on runs already in it, before anything is opened: a
/// mistyped `--db` would otherwise be created, migrated and shown as empty
/// (and left behind, with its -wal and -shm). `enqueue` creates the file,
/// like `serve`, `worker` and `migrate`.
pub fn require_existing_db(db: &Path, command: &Command) -> Result<()> {
    let reads_only = matches!(
        command,
        Command::Status
            | Command::Jobs(_)
            | Command::Show { .. }
            | Command::Logs(_)
            | Command::Cancel { .. }
            | Command::Rerun { .. }
            | Command::RetryNow { .. }
            | Command::GiveUp { .. }
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Delete { .. }
            | Command::CleanupStalled
            | Command::Backup { .. }
            | Command::Schedules(_)
            | Command::Notifications(_)
    );
    match std::fs::symlink_metadata(db) {
        Err(e) if reads_only && e.kind() == std::io::ErrorKind::NotFound => Err(Error::Open {
            path: db.to_path_buf(),
            message: "the database file does not exist (check --db; serve, worker, \
                      enqueue and migrate create it)"
                .into(),
        }),
        _ => Ok(()),
    }
}

/// Carries out one of the run commands.
pub fn run(m: &Manager, command: Command, json: bool) -> Result<i32> {
    match command {
        Command::Enqueue(a) => enqueue::enqueue(m, &a, json),
        Command::Status => status(m, json),
        Command::Jobs(a) => jobs(m, &a, json),
        Command::Show { id } => {
            let d = m.details(id)?;
            if json {
                let mut run = serde_json::to_value(&d.run).unwrap_or_default();
                run["attempts"] = serde_json::to_value(&d.attempts).unwrap_or_default();
                run["after"] = serde_json::to_value(&d.after).unwrap_or_default();
                run["waitedForBy"] = serde_json::to_value(&d.waited_for_by).unwrap_or_default();
                print_json(&run);
            } else {
                output::run_details(&d.run, d.worker.as_ref());
                output::attempts(&d.attempts);
                output::links(&d.after, &d.waited_for_by);
            }
            Ok(0)
        }
        Command::Logs(a) => logs(m, &a, json),
        Command::Cancel { id: None, bulk } => super::bulk::run(m, BulkAction::Cancel, &bulk, json),
        Command::Rerun { id: None, bulk } => super::bulk::run(m, BulkAction::Rerun, &bulk, json),
        Command::Delete { id: None, bulk } => super::bulk::run(m, BulkAction::Delete, &bulk, json),
        Command::Delete { id: Some(id), .. } => {
            let lines = m.delete_run(id, &Actor::cli())?;
            if json {
                print_json(&json!({"id": id, "deleted": true, "logLinesDeleted": lines}));
            } else {
                outln!("run {id} deleted, with {lines} log lines");
            }
            Ok(0)
        }
        Command::Cancel { id: Some(id), .. } => {
            let r = m.cancel(id, &Actor::cli())?;
            if json {
                print_json(&json!({"id": id, "result": r}));
            } else {
                match r {
                    CancelResult::Cancelled => outln!("run {id} cancelled"),
                    CancelResult::Requested => {
                        outln!("run {id} is running; the worker was asked to cancel it")
                    }
                }
            }
            Ok(0)
        }
        Command::Rerun { id: Some(id), .. } => {
            let run = m.rerun(id, Trigger::Cli, &Actor::cli())?;
            if json {
                print_json(&run);
            } else {
                outln!("{}", run.id);
            }
            Ok(0)
        }
        Command::Backup { path } => {
            let pages = m.backup_to(&path)?;
            if json {
                print_json(&json!({"path": path.display().to_string(), "pages": pages}));
            } else {
                outln!("backup written to {} ({pages} pages)", path.display());
            }
            Ok(0)
        }
        Command::Pause { name } => pause(m, &name, true, json),
        Command::Resume { name } => pause(m, &name, false, json),
        Command::RetryNow { id } => waiting(m, id, WaitingAction::RetryNow, json),
        Command::GiveUp { id } => waiting(m, id, WaitingAction::GiveUp, json),
        Command::CleanupStalled => {
            let rec = m.cleanup_stalled(&Actor::cli())?;
            if json {
                print_json(&rec);
            } else {
                report::recovery(&rec);
            }
            Ok(0)
        }
        Command::Worker(_)
        | Command::Serve(_)
        | Command::Migrate
        | Command::JobTypes
        | Command::CheckConfig
        | Command::Check
        | Command::Schedules(_)
        | Command::Notifications(_)
        | Command::Restore { .. }
        | Command::Bench(_)
        | Command::Completions { .. } => Ok(0),
    }
}

/// `pause NAME` and `resume NAME`.
fn pause(m: &Manager, name: &str, paused: bool, json: bool) -> Result<i32> {
    let changed = m.set_paused(name, paused, &Actor::cli())?;
    let queued = m.type_states()?.get(name).map_or(0, |s| s.queued);
    if json {
        print_json(&json!({"name": name, "paused": paused, "changed": changed, "queued": queued}));
    } else {
        let state = if paused { "paused" } else { "resumed" };
        let already = if changed { "" } else { " (it already was)" };
        outln!("job type {name} {state}{already}; {queued} queued run(s)");
    }
    Ok(0)
}

/// `retry-now ID` and `give-up ID`.
fn waiting(m: &Manager, id: i64, action: WaitingAction, json: bool) -> Result<i32> {
    let run = m.on_waiting(id, action, &Actor::cli())?;
    if json {
        print_json(&run);
    } else if action == WaitingAction::RetryNow {
        outln!("run {id}: attempt {} is due now", run.attempt);
    } else {
        outln!(
            "run {id} failed: {}",
            run.error.as_deref().unwrap_or("gave up")
        );
    }
    Ok(0)
}

fn status(m: &Manager, json: bool) -> Result<i32> {
    let w = m.worker_status()?;
    let counts = m.counts()?;
    let mark = m.high_water()?;
    let housekeeping = m.housekeeping()?;
    let notifications = m.notify_summary()?;
    if json {
        let behind = mark.behind().then(|| mark.to_string());
        if let Some(b) = &behind {
            log::error!("{}: {b}", m.database_path().display());
        }
        print_json(
            &json!({"worker": w, "counts": counts, "behindHighWaterMark": behind,
            "housekeeping": housekeeping, "notifications": notifications}),
        );
    } else {
        report::status(&w, &counts);
        report::housekeeping(&housekeeping);
        report::notifications(&notifications);
        if mark.behind() {
            println!("WARNING: {mark}");
        }
    }
    Ok(0)
}

fn jobs(m: &Manager, a: &JobsArgs, json: bool) -> Result<i32> {
    let statuses = match &a.status {
        Some(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(parse_status)
            .collect::<Result<Vec<_>>>()?,
        None => vec![],
    };
    if a.limit == 0 || a.limit > MAX_LIMIT {
        return Err(Error::Invalid(format!(
            "--limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = RunFilter {
        statuses,
        name: a.name.clone(),
        q: a.search.clone(),
        before_id: a.before,
        limit: a.limit,
        ..RunFilter::default()
    };
    let runs = m.list(&filter)?;
    if json {
        print_json(&runs);
    } else {
        output::run_table(&runs);
    }
    Ok(0)
}

/// Parses a status name, listing the valid ones on a miss.
pub fn parse_status(s: &str) -> Result<JobStatus> {
    JobStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        Error::Invalid(format!(
            "unknown status '{s}' (expected one of {})",
            all.join(", ")
        ))
    })
}

fn logs(m: &Manager, a: &LogsArgs, json: bool) -> Result<i32> {
    let min_level = match &a.level {
        Some(l) => Some(LogLevel::parse(l).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown level '{l}' (expected debug, info, warning or error)"
            ))
        })?),
        None => None,
    };
    let mut filter = LogFilter {
        min_level,
        q: a.search.clone(),
        after_id: None,
        limit: 1000,
    };
    loop {
        let lines = m.logs(a.id, &filter)?;
        for l in &lines {
            output::log_line(l, json);
        }
        if let Some(last) = lines.last() {
            filter.after_id = Some(last.id);
        }
        if lines.len() == filter.limit {
            continue;
        }
        if !a.follow || m.get(a.id)?.status.is_finished() {
            // One more read after the run finished: lines committed with
            // the final status must not be missed.
            if a.follow {
                for l in m.logs(a.id, &filter)? {
                    output::log_line(&l, json);
                }
            }
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
