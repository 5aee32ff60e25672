//! The command line: subcommands and flags, parsed into plain values and
//! handed to the functions that carry them out.

mod bulk;
pub mod check;
mod enqueue;
mod notify;
mod output;
mod report;
mod restore;
mod runs;
mod schedules;
pub mod serve;
mod worker;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, CommandFactory, Parser, Subcommand};

use output::outln;

use crate::config::{self, Settings};
use crate::error::Result;
use crate::jobfile;
use crate::jobs;
use crate::manager::Manager;
use crate::registry::Registry;

/// jobmgr: runs, watches and controls the background jobs of one host.
#[derive(Debug, Parser)]
#[command(name = "jobmgr", version = crate::worker::VERSION, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The SQLite database file.
    #[arg(long, global = true, env = "JOBMGR_DB", default_value = config::DEFAULT_DB)]
    pub db: PathBuf,
    /// The job-type file (default: jobmgr.toml beside the database, if present).
    #[arg(long, global = true, env = "JOBMGR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print times in this machine's time zone (with its offset) instead of
    /// UTC; JSON stays UTC.
    #[arg(long, global = true, env = "JOBMGR_LOCAL_TIME")]
    pub local: bool,
    /// Heartbeat interval in milliseconds.
    #[arg(long, global = true, hide = true, env = "JOBMGR_HEARTBEAT_MS", default_value_t = config::HEARTBEAT_MS)]
    pub heartbeat_ms: u64,
    /// A worker silent for longer than this (milliseconds) is stale.
    #[arg(long, global = true, hide = true, env = "JOBMGR_STALE_AFTER_MS", default_value_t = config::STALE_AFTER_MS)]
    pub stale_after_ms: u64,
    /// Seconds a stopping worker lets running jobs finish before cancelling them.
    #[arg(long, global = true, env = "JOBMGR_DRAIN_TIMEOUT", default_value_t = config::DRAIN_TIMEOUT_SECS)]
    pub drain_timeout: f64,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admin page and the HTTP API, and supervise a worker (the default).
    Serve(serve::ServeArgs),
    /// Run the worker (only one per database), or stop the running one.
    Worker(worker::WorkerArgs),
    /// Enqueue a run: NAME [-p key=value]...
    Enqueue(enqueue::EnqueueArgs),
    /// Show the worker and the number of runs per status.
    Status,
    /// List runs, newest first.
    Jobs(runs::JobsArgs),
    /// Show one run.
    Show { id: i64 },
    /// Show a run's log lines.
    Logs(runs::LogsArgs),
    /// Cancel a queued or running run, or every run a filter matches.
    Cancel {
        /// The run; without it, the filter below selects the runs.
        id: Option<i64>,
        #[command(flatten)]
        bulk: bulk::BulkArgs,
    },
    /// Enqueue a finished run again with the same parameters, or every finished run a filter matches.
    Rerun {
        /// The run; without it, the filter below selects the runs.
        id: Option<i64>,
        #[command(flatten)]
        bulk: bulk::BulkArgs,
    },
    /// Delete a finished run with its log lines, or every finished run a filter matches.
    Delete {
        /// The run; without it, the filter below selects the runs.
        id: Option<i64>,
        #[command(flatten)]
        bulk: bulk::BulkArgs,
    },
    /// Try a run waiting for its next attempt now.
    RetryNow { id: i64 },
    /// Fail a run waiting for its next attempt, giving up its retries.
    GiveUp { id: i64 },
    /// Fail RUNNING runs whose worker is gone ("worker lost").
    CleanupStalled,
    /// List the job types and their parameters.
    JobTypes,
    /// Pause a job type: its queued runs wait, the others run.
    Pause { name: String },
    /// Resume a paused job type.
    Resume { name: String },
    /// Apply database migrations and exit.
    Migrate,
    /// Check the job-type config file and report every problem.
    CheckConfig,
    /// List the notifiers and the newest notification deliveries.
    Notifications(notify::NotificationsArgs),
    /// List schedules, or show, run, pause or resume one.
    Schedules(schedules::SchedulesArgs),
    /// Copy the live database to PATH while jobs run (it must not exist).
    Backup {
        /// Where the copy goes; not the database, its -wal/-shm/-journal,
        /// its .lock or .token.
        path: PathBuf,
    },
    /// Put a backup in place of the database (no worker or server may be using it);
    /// the old file is kept as <db>.before-restore-<time>.
    Restore {
        /// A backup made by `jobmgr backup` or the backup-database job.
        backup: PathBuf,
    },
    /// Check the database: integrity, schema version, run counters, high-water mark.
    Check,
    /// Measure throughput and latency on this disk (temporary databases beside --db).
    Bench(BenchArgs),
    /// Print a shell completion script: `jobmgr completions bash > /etc/bash_completion.d/jobmgr`.
    Completions {
        /// The shell (bash, zsh, fish, elvish, powershell).
        shell: clap_complete::Shell,
    },
}

/// `jobmgr bench [SCENARIO]...`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(value_name = "SCENARIO", help = crate::bench::scenarios_help())]
    pub scenarios: Vec<String>,
    /// Runs (or log lines) per scenario [default: 100000; 10000 in the
    /// scenarios that commit once per run: raw-1-per-tx, enqueue,
    /// enqueue-concurrent, api-enqueue].
    #[arg(long)]
    pub n: Option<usize>,
    /// Runs queued behind (process-backlog) or finished before (process-history).
    #[arg(long, default_value_t = 1_000_000)]
    pub backlog: usize,
    /// Log lines already in the file for process-history.
    #[arg(long, default_value_t = 10_000_000)]
    pub history_lines: usize,
    /// Run the scenarios this many times, each time in fresh processes, and
    /// print the median (and lowest and highest) of each figure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,
    /// Another jobmgr binary to measure in alternation with this one (the
    /// order swapped every round), printing both and the change.
    #[arg(long, value_name = "JOBMGR")]
    pub compare: Option<PathBuf>,
    /// Internal: be the enqueueing process of the latency scenario.
    #[arg(long, hide = true)]
    pub latency_client: bool,
}

/// Parses `args` and runs the command. Returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<i32> {
    run_with(args, jobs::builtin_registry())
}

/// [`run`] for a program with its own Rust job types: `base` holds every
/// type compiled into the program (start from
/// [`jobs::builtin_registry`]); the config file is read over it, so its
/// `[policies.X]` can set a policy for any of them. The worker `serve`
/// starts runs this same executable, which must call `run_with` with the
/// same types.
pub fn run_with(args: impl IntoIterator<Item = OsString>, base: Registry) -> Result<i32> {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // clap prints help and usage errors itself, with its own codes.
            let _ = e.print();
            return Ok(e.exit_code());
        }
    };
    let settings = Settings {
        db: cli.global.db.clone(),
        config: cli.global.config.clone(),
        heartbeat_ms: cli.global.heartbeat_ms,
        stale_after_ms: cli.global.stale_after_ms,
        drain_timeout_secs: cli.global.drain_timeout,
    };
    if let Some(Command::Completions { shell }) = cli.command {
        return completions(shell);
    }
    settings.validate()?;
    crate::clock::init_from_env()?;
    let json = cli.global.json;
    output::set_local_time(cli.global.local);
    // Plain `jobmgr` serves.
    let command = match cli.command {
        Some(c) => c,
        None => Command::Serve(serve::ServeArgs::defaults()?),
    };
    runs::require_existing_db(&settings.db, &command)?;
    if matches!(command, Command::CheckConfig) {
        return report::check_config(&jobfile::check(&settings, &base)?, json);
    }
    if matches!(command, Command::Check) {
        return check::run(&settings, json);
    }
    if let Command::Restore { backup } = &command {
        return restore::run(&settings.db, backup, json);
    }
    let registry = Arc::new(registry_for(&settings, &command, &base)?);
    match command {
        Command::Serve(args) => serve::run(&settings, registry, &args),
        Command::Worker(args) => worker::run(&settings, registry, &base, &args, json),
        Command::Migrate => migrate(&settings, json),
        Command::JobTypes => {
            // The database adds paused types and waiting runs, when there is one.
            let states = match settings.db.exists() {
                true => Some(open_manager(&settings, registry.clone())?.type_states()?),
                false => None,
            };
            report::job_types(&registry, states.as_ref(), json)
        }
        Command::Bench(a) if a.latency_client => {
            crate::bench::latency_client(&settings.db, a.n.unwrap_or(1))?;
            Ok(0)
        }
        Command::Bench(a) => {
            let opts = crate::bench::BenchOptions {
                db: settings.db.clone(),
                n: a.n.unwrap_or(crate::bench::DEFAULT_N),
                n_given: a.n,
                backlog: a.backlog,
                history_lines: a.history_lines,
            };
            if a.rounds > 1 || a.compare.is_some() {
                crate::bench::check_names(&a.scenarios)?;
                let rounds = usize::from(a.rounds);
                crate::bench::run_rounds(&a.scenarios, &opts, rounds, a.compare.as_deref(), json)?;
            } else {
                crate::bench::run(&a.scenarios, &opts, json)?;
            }
            Ok(0)
        }
        Command::Schedules(a) => schedules::run(&open_manager(&settings, registry)?, &a, json),
        Command::Notifications(a) => notify::run(&open_manager(&settings, registry)?, &a, json),
        other => {
            let manager = open_manager(&settings, registry)?;
            runs::run(&manager, other, json)
        }
    }
}

/// Prints the completion script for `shell`. It needs no database: it is
/// generated from the definitions above. Built in memory first, because
/// clap_complete panics when its writer fails; printed like every other
/// line (a closed pipe ends the process quietly).
fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "jobmgr", &mut script);
    outln!("{}", String::from_utf8_lossy(&script).trim_end());
    Ok(0)
}

/// The job types a command works with. Commands that start, enqueue or
/// resolve runs refuse an invalid config file; commands that only read or
/// cancel runs fall back to the built-ins with a warning, so a broken file
/// never stops anyone from looking at or cancelling runs.
fn registry_for(settings: &Settings, command: &Command, base: &Registry) -> Result<Registry> {
    let lenient = matches!(
        command,
        Command::Status
            | Command::Jobs(_)
            | Command::Show { .. }
            | Command::Logs(_)
            | Command::Cancel { .. }
            | Command::Delete { .. }
            | Command::Migrate
            | Command::Bench(_)
            | Command::Backup { .. }
            | Command::Notifications(_)
    );
    match jobfile::build_registry(settings, base) {
        Ok(registry) => {
            if matches!(command, Command::Worker(w) if w.action.is_none()) {
                let (path, _) = settings.config_path();
                let names: Vec<String> = registry.infos().into_iter().map(|i| i.name).collect();
                let source = if path.exists() {
                    path.display().to_string()
                } else {
                    "built-ins only".to_string()
                };
                log::info!("job types ({source}): {}", names.join(", "));
            }
            Ok(registry)
        }
        Err(e) if lenient => {
            log::warn!("{e}; using the built-in job types only");
            Ok(base.clone())
        }
        Err(e) => Err(e),
    }
}

/// Opens the database and builds the domain API over it.
pub fn open_manager(settings: &Settings, registry: Arc<Registry>) -> Result<Manager> {
    Manager::open(
        &settings.db,
        registry,
        settings.stale_after_ms as i64,
        (settings.drain_timeout_secs * 1000.0) as i64,
    )
}

fn migrate(settings: &Settings, json: bool) -> Result<i32> {
    let applied = crate::manager::database::migrate(&settings.db)?;
    if json {
        output::print_json(&serde_json::json!({ "applied": applied }));
    } else if applied.is_empty() {
        outln!("database {} is up to date", settings.db.display());
    } else {
        outln!("applied {}", applied.join(", "));
    }
    Ok(0)
}
