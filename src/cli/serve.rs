//! `jobmgr serve` (also plain `jobmgr`): its flags. The web server, the
//! change watcher, the maintenance ticker and the worker supervisor are
//! started and stopped by `app::serve`.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use crate::app::{self, ServeOptions};
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::registry::Registry;

/// `jobmgr serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "JOBMGR_BIND", default_value = config::DEFAULT_BIND)]
    pub bind: String,
    /// Do not start a worker (one can be started from the page later).
    #[arg(long)]
    pub no_worker: bool,
    /// Seconds a client may leave the server's writes unread (a live page
    /// that stopped reading), or an open connection silent, before the
    /// server closes it.
    #[arg(long, env = "JOBMGR_CLIENT_TIMEOUT", default_value_t = config::CLIENT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub client_timeout: u64,
    /// Also serve `GET /metrics` on this address, without a token (for a
    /// Prometheus scraper; bind it where only the scraper can reach it).
    #[arg(long, env = "JOBMGR_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// Milliseconds between resolutions of silent workers' runs.
    #[arg(long, hide = true, env = "JOBMGR_MAINTENANCE_MS", default_value_t = config::MAINTENANCE_EVERY_MS)]
    pub maintenance_ms: u64,
}

impl ServeArgs {
    /// The arguments plain `jobmgr` runs with: defaults and environment.
    pub fn defaults() -> Result<ServeArgs> {
        let cmd = <ServeArgs as Args>::augment_args(clap::Command::new("serve"));
        let m = cmd
            .try_get_matches_from(["serve"])
            .map_err(|e| Error::Invalid(e.to_string()))?;
        ServeArgs::from_arg_matches(&m).map_err(|e| Error::Invalid(e.to_string()))
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(settings: &Settings, registry: Arc<Registry>, args: &ServeArgs) -> Result<i32> {
    let opts = ServeOptions {
        bind: args.bind.clone(),
        start_worker: !args.no_worker,
        client_timeout: Duration::from_secs(args.client_timeout),
        maintenance_every: Duration::from_millis(args.maintenance_ms),
        metrics_bind: args.metrics_bind.clone(),
    };
    app::serve(settings, registry, &opts)
}
