//! `jobmgr serve` (also plain `jobmgr`): the web server, the change
//! watcher, the periodic sweep of silent workers (`maintenance`) and the
//! worker supervisor, started in that order's reverse dependencies and
//! stopped and joined on SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use crossbeam_channel::bounded;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::events::{CLIENT_QUEUE, Hub};
use crate::maintenance::{self, SweepTiming};
use crate::registry::Registry;
use crate::supervisor::Supervisor;
use crate::watcher;
use crate::web::{self, Ctx, MAX_SOCKETS, WebServer, auth};

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
    let manager = super::open_manager(settings, registry)?;
    let env_token = std::env::var("JOBMGR_TOKEN").ok();
    let token = auth::load_token(&settings.db, env_token.as_deref())?;
    let (server, addr) = web::bind(&args.bind, Duration::from_secs(args.client_timeout))?;
    // Installed before any thread starts, so an early signal is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(Error::io("install signal handlers", &settings.db))?;
    let supervisor = Arc::new(Supervisor::spawn(settings, !args.no_worker)?);
    let hub = Hub::new(MAX_SOCKETS, CLIENT_QUEUE);
    // Nothing is ever sent: dropping the sender tells every thread to stop.
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let ctx = Arc::new(Ctx {
        manager: manager.clone(),
        hub: hub.clone(),
        token: token.clone(),
        supervisor: supervisor.clone(),
        hosts: web::allowed_hosts(addr),
        followers: Arc::new(AtomicUsize::new(0)),
        shutdown: stop_rx.clone(),
    });
    let pid = supervisor.child_pid();
    let (m, h, s) = (manager.clone(), hub.clone(), stop_rx.clone());
    let watcher = spawn("watcher", move || watcher::run(m, h, move || pid.get(), s))?;
    let (m, s, child) = (manager.clone(), stop_rx.clone(), supervisor.child_pid());
    let timing = SweepTiming {
        every: Duration::from_millis(args.maintenance_ms.max(10)),
        stale_after: Duration::from_millis(settings.stale_after_ms),
    };
    let tick = spawn("maintenance", move || {
        maintenance::sweep_every(m.store(), m.registry(), timing, &|| child.alive(), &s)
    })?;
    let web = WebServer::start(server, addr, ctx)?;

    println!("jobmgr admin: {}", admin_url(addr, &token));
    let _ = std::io::stdout().flush();
    log::info!("listening on {addr}");

    if let Some(sig) = signals.forever().next() {
        log::info!("received signal {sig}; shutting down");
    }
    drop(stop_tx);
    web.stop();
    hub.close();
    let _ = watcher.join();
    let _ = tick.join();
    supervisor.shutdown();
    log::info!("server stopped");
    Ok(0)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(Error::io("spawn thread", name))
}

/// The URL printed at start: the bound address, or loopback when bound to
/// every interface.
fn admin_url(addr: SocketAddr, token: &str) -> String {
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    format!("http://{shown}/admin/jobs?token={token}")
}
