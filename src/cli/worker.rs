//! `jobmgr worker` and `jobmgr worker stop`.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::output::{outln, print_json};
use crate::app;
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::runner::WorkerOptions;
use crate::worker::human_ms;

/// `jobmgr worker [stop]`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub action: Option<WorkerAction>,
    /// Jobs run at once.
    #[arg(long, env = "JOBMGR_CONCURRENCY", default_value_t = config::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// How often the worker's housekeeping (disk guard, retention) ticks, in milliseconds.
    #[arg(long, hide = true, env = "JOBMGR_HOUSEKEEPING_MS", default_value_t = config::HOUSEKEEPING_EVERY_MS)]
    pub housekeeping_ms: u64,
}

/// What to do with the worker.
#[derive(Debug, Subcommand)]
pub enum WorkerAction {
    /// Ask the running worker to stop (it drains running jobs first).
    Stop,
}

/// Runs the worker, or writes a stop request; `base` holds the job types
/// compiled in, for reading the config file's `[retention]`.
pub fn run(
    settings: &Settings,
    registry: Arc<Registry>,
    base: &Registry,
    args: &WorkerArgs,
    json: bool,
) -> Result<i32> {
    match args.action {
        Some(WorkerAction::Stop) => {
            let m = super::open_manager(settings, registry)?;
            let w = m.request_worker_stop(&crate::manager::Actor::cli())?;
            if json {
                print_json(&w);
            } else {
                outln!(
                    "stop requested for worker {} (pid {} on {}); it drains running jobs for up to {}",
                    w.id,
                    w.pid,
                    w.hostname,
                    human_ms((settings.drain_timeout_secs * 1000.0) as i64)
                );
            }
            Ok(0)
        }
        None => {
            if args.concurrency == 0 || args.concurrency > config::MAX_CONCURRENCY {
                return Err(Error::Invalid(format!(
                    "--concurrency must be between 1 and {}",
                    config::MAX_CONCURRENCY
                )));
            }
            let opts = WorkerOptions {
                db: settings.db.clone(),
                concurrency: args.concurrency,
                timing: settings.timing(),
                retention: Some(crate::jobfile::retention(settings, base)?),
                housekeeping_every: Duration::from_millis(args.housekeeping_ms.max(10)),
            };
            app::worker::run_worker(&opts, registry)?;
            Ok(0)
        }
    }
}
