//! The run commands: enqueue, status, jobs, show, logs, cancel, rerun,
//! delete, cleanup-stalled (over a filter: see `bulk`).

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value, json};

use super::Command;
use super::output::{self, outln, print_json};
use crate::clock::{self, Timestamp};
use crate::error::{Error, Result};
use crate::job::{JobStatus, LogLevel, Trigger};
use crate::manager::{Actor, BulkAction, CancelResult, EnqueueRequest, Manager};
use crate::query::LogFilter;
use crate::query::RunFilter;

/// `jobmgr enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job type.
    pub name: String,
    /// A parameter as key=value (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Parameters as one JSON object (merged under -p values).
    #[arg(long = "params-json", value_name = "JSON")]
    pub params_json: Option<String>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i64,
    /// Wait as SCHEDULED until this time, with its zone: 2026-12-24T06:00:00Z,
    /// 2026-12-24T07:00:00+01:00 or "2026-12-24T07:00 Europe/Berlin".
    #[arg(long, value_name = "TIME", conflicts_with = "delay")]
    pub at: Option<String>,
    /// Wait as SCHEDULED for this long first: 90s, 15m, 2h, 1d, 1h30m.
    #[arg(long = "in", value_name = "DELAY", id = "delay")]
    pub delay: Option<String>,
}

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
            | Command::Delete { .. }
            | Command::CleanupStalled
            | Command::Backup { .. }
            | Command::Schedules(_)
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
        Command::Enqueue(a) => enqueue(m, &a, json),
        Command::Status => status(m, json),
        Command::Jobs(a) => jobs(m, &a, json),
        Command::Show { id } => {
            let d = m.details(id)?;
            if json {
                print_json(&d.run);
            } else {
                output::run_details(&d.run, d.worker.as_ref());
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
        Command::CleanupStalled => {
            let rec = m.cleanup_stalled(&Actor::cli())?;
            if json {
                print_json(&rec);
            } else {
                output::recovery(&rec);
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
        | Command::Restore { .. }
        | Command::Bench(_)
        | Command::Completions { .. } => Ok(0),
    }
}

/// Parses `-p key=value` values and `--params-json` into one object.
pub fn parse_params(pairs: &[String], json_text: Option<&str>) -> Result<Map<String, Value>> {
    let mut out = match json_text {
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(Error::Invalid("--params-json must be a JSON object".into())),
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "--params-json is not valid JSON: {e}"
                )));
            }
        },
        None => Map::new(),
    };
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("-p expects KEY=VALUE, got '{p}'")))?;
        if k.is_empty() {
            return Err(Error::Invalid(format!("-p expects KEY=VALUE, got '{p}'")));
        }
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

fn enqueue(m: &Manager, a: &EnqueueArgs, json: bool) -> Result<i32> {
    let req = EnqueueRequest {
        job_name: a.name.clone(),
        parameters: parse_params(&a.params, a.params_json.as_deref())?,
        priority: a.priority,
        trigger: Trigger::Cli,
    };
    let run_at = match (&a.at, &a.delay) {
        (Some(at), _) => Some(clock::parse_instant(at)?),
        (None, Some(d)) => Some(Timestamp::now().plus_ms(clock::parse_delay(d)?)),
        (None, None) => None,
    };
    let run = m.enqueue_at(&req, run_at, &Actor::cli())?;
    if json {
        print_json(&run);
    } else {
        outln!("{}", run.id);
    }
    Ok(0)
}

fn status(m: &Manager, json: bool) -> Result<i32> {
    let w = m.worker_status()?;
    let counts = m.counts()?;
    let mark = m.high_water()?;
    let housekeeping = m.housekeeping()?;
    if json {
        let behind = mark.behind().then(|| mark.to_string());
        if let Some(b) = &behind {
            log::error!("{}: {b}", m.database_path().display());
        }
        print_json(
            &json!({"worker": w, "counts": counts, "behindHighWaterMark": behind,
            "housekeeping": housekeeping}),
        );
    } else {
        output::status(&w, &counts);
        output::housekeeping(&housekeeping);
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
