//! Start-up and shutdown of the two long-running commands, in Litestream's
//! `Open`/`Close` style: [`Serve::open`] opens and migrates the store,
//! makes the channels and starts every thread of `jobmgr serve` in a fixed
//! order; [`Serve::close`] stops them in the reverse order and joins every
//! one (the live sockets' writer and log-follow threads included). The
//! worker's threads are started and joined in [`worker`]. `cli/` only
//! parses and calls here.

mod bulk;
pub mod worker;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::checkpointer::Checkpointer;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events::{CLIENT_QUEUE, Hub};
use crate::maintenance::tasks;
use crate::maintenance::ticker::Ticker;
use crate::manager::Manager;
use crate::registry::Registry;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::watcher;
use crate::web::{self, Ctx, MAX_SOCKETS, Sockets, WebServer, auth, live::Live};

/// How long `serve` waits for the change watcher's starting point before
/// answering requests anyway.
const WATCHER_READY: Duration = Duration::from_secs(10);

/// The domain API over `store`, with the timings of `settings`.
fn manager_over(store: Store, settings: &Settings, registry: Arc<Registry>) -> Manager {
    Manager::new(
        store,
        registry,
        settings.stale_after_ms as i64,
        (settings.drain_timeout_secs * 1000.0) as i64,
    )
}

/// How `jobmgr serve` runs, from its flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port).
    pub bind: String,
    /// Start a worker at once.
    pub start_worker: bool,
    /// How long a client may leave writes unread or stay silent.
    pub client_timeout: Duration,
    /// The maintenance ticker's interval.
    pub maintenance_every: Duration,
    /// A second address serving only `GET /metrics`, without a token.
    pub metrics_bind: Option<String>,
}

/// A running `jobmgr serve`: every thread it started, in start order.
pub struct Serve {
    addr: SocketAddr,
    token: String,
    signals: Signals,
    /// Nothing is ever sent: dropping it tells the watcher, the ticker and
    /// the log-follow sockets to stop.
    stop: Sender<()>,
    supervisor: Arc<Supervisor>,
    hub: Arc<Hub>,
    ctx: Arc<Ctx>,
    watcher: JoinHandle<()>,
    ticker: JoinHandle<()>,
    bulk: JoinHandle<()>,
    web: WebServer,
    /// The `--metrics-bind` server and its address, when asked for.
    scrape: Option<(WebServer, SocketAddr)>,
    /// Checkpoints the WAL the group commit writes (started first).
    checkpointer: Checkpointer,
}

/// Runs `jobmgr serve` until SIGTERM or SIGINT, then stops everything.
pub fn serve(settings: &Settings, registry: Arc<Registry>, opts: &ServeOptions) -> Result<i32> {
    let mut app = Serve::open(settings, registry, opts)?;
    println!("jobmgr admin: {}", app.admin_url());
    let _ = std::io::stdout().flush();
    log::info!("listening on {}", app.addr);
    if let Some(a) = app.metrics_addr() {
        println!("jobmgr metrics: http://{a}/metrics");
        let _ = std::io::stdout().flush();
    }
    app.wait_for_signal();
    app.close();
    Ok(0)
}

impl Serve {
    /// Opens the store and starts, in this order: the checkpointer, the worker supervisor,
    /// the change watcher, the maintenance ticker, the bulk thread and the
    /// web server.
    pub fn open(
        settings: &Settings,
        registry: Arc<Registry>,
        opts: &ServeOptions,
    ) -> Result<Serve> {
        // Opened here, not by the manager: the maintenance tasks are the
        // engine's too and share the same pool.
        let store = Store::open(&settings.db)?;
        // First, so every commit of the group commit has it to wake.
        let checkpointer = Checkpointer::start(&settings.db)?;
        let manager = manager_over(store.clone(), settings, registry.clone())
            .with_checkpoints(checkpointer.nudge());
        let env_token = std::env::var("JOBMGR_TOKEN").ok();
        let token = auth::load_token(&settings.db, env_token.as_deref())?;
        let (server, addr) = web::bind(&opts.bind, opts.client_timeout)?;
        // Bound before any thread starts, so a taken address fails cleanly.
        let scrape_server = match &opts.metrics_bind {
            Some(b) => Some(web::bind(b, opts.client_timeout)?),
            None => None,
        };
        // Installed before any thread starts, so an early signal is not lost.
        let signals = Signals::new([SIGTERM, SIGINT])
            .map_err(Error::io("install signal handlers", &settings.db))?;
        let hub = Hub::new(MAX_SOCKETS, CLIENT_QUEUE);
        let live = Live::start(hub.clone(), opts.client_timeout)?;
        let gone = manager.clone();
        let on_exit = Box::new(move |pid| match gone.worker_exited(pid) {
            Ok(r) if !r.dead_workers.is_empty() => log::warn!(
                "worker process {pid} is gone: declared it dead and resolved {} run(s)",
                r.runs.len()
            ),
            Ok(_) => {}
            Err(e) => log::warn!("record that worker process {pid} is gone: {e}"),
        });
        let supervisor = Arc::new(Supervisor::spawn(settings, opts.start_worker, on_exit)?);
        let (stop, stop_rx) = bounded::<()>(0);
        // One pending wake is enough: the thread looks at every action.
        let (bulk_wake, bulk_woken) = bounded::<()>(1);

        let child = supervisor.child_pid();
        let ticker = Ticker::new(
            opts.maintenance_every.max(Duration::from_millis(10)),
            Duration::from_millis(settings.stale_after_ms),
            tasks::serve_tasks(
                &store,
                registry,
                settings.stale_after_ms as i64,
                Box::new(move || child.alive()),
            ),
        );
        let ctx = Arc::new(Ctx {
            manager: manager.clone(),
            hub: hub.clone(),
            token: token.clone(),
            supervisor: supervisor.clone(),
            hosts: web::allowed_hosts(addr),
            followers: Arc::new(AtomicUsize::new(0)),
            shutdown: stop_rx.clone(),
            sockets: Sockets::default(),
            live,
            tasks: ticker.reports(),
            bulk_wake,
        });
        let pid = supervisor.child_pid();
        let (m, h, s) = (manager.clone(), hub.clone(), stop_rx.clone());
        let (ready, watching) = bounded::<()>(1);
        let watcher = spawn("watcher", move || {
            watcher::run(m, h, move || pid.get(), s, ready)
        })?;
        // Requests wait until the watcher has its starting point (see
        // watcher::run); a database it cannot read yet does not hold the
        // server back for long (the watcher keeps trying).
        if watching.recv_timeout(WATCHER_READY).is_err() {
            log::warn!("change watcher not ready after {WATCHER_READY:?}; serving anyway");
        }
        let s = stop_rx.clone();
        let ticker = spawn("maintenance", move || ticker.run(&s))?;
        let (m, s) = (manager.clone(), stop_rx);
        let bulk = spawn("bulk", move || bulk::run(m, bulk_woken, s))?;
        let started = WebServer::start(server, ctx.clone()).and_then(|w| match scrape_server {
            Some((s, a)) => match WebServer::start_metrics(s, ctx.clone()) {
                Ok(m) => Ok((w, Some((m, a)))),
                Err(e) => {
                    w.stop();
                    Err(e)
                }
            },
            None => Ok((w, None)),
        });
        let (web, scrape) = match started {
            Ok(w) => w,
            Err(e) => {
                // Stop what was started, so a failed open leaves no thread.
                drop(stop);
                hub.close();
                ctx.live.join();
                let _ = watcher.join();
                let _ = ticker.join();
                let _ = bulk.join();
                supervisor.shutdown();
                checkpointer.stop();
                return Err(e);
            }
        };
        Ok(Serve {
            addr,
            token,
            signals,
            stop,
            supervisor,
            hub,
            ctx,
            watcher,
            ticker,
            bulk,
            web,
            scrape,
            checkpointer,
        })
    }

    /// The `--metrics-bind` address, when one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.scrape.as_ref().map(|(_, a)| *a)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL printed at start: the bound address, or loopback when bound
    /// to every interface.
    pub fn admin_url(&self) -> String {
        admin_url(self.addr, &self.token)
    }

    /// Blocks until SIGTERM or SIGINT arrives.
    pub fn wait_for_signal(&mut self) {
        if let Some(sig) = self.signals.forever().next() {
            log::info!("received signal {sig}; shutting down");
        }
    }

    /// Stops every thread, in the reverse of the start order, and joins it:
    /// the web server (no new requests or sockets), the live sockets (the
    /// hub is closed and their writer ends, follow sockets see the stop),
    /// the bulk thread (it
    /// stops between two batches), the watcher and the ticker, the
    /// supervised worker, which drains its runs, and last the checkpointer.
    pub fn close(self) {
        drop(self.stop);
        if let Some((scrape, _)) = self.scrape {
            scrape.stop();
        }
        self.web.stop();
        self.hub.close();
        self.ctx.live.join();
        self.ctx.sockets.join_all();
        let _ = self.bulk.join();
        let _ = self.watcher.join();
        let _ = self.ticker.join();
        self.supervisor.shutdown();
        // Last: after every commit, so its last checkpoint copies them all.
        self.checkpointer.stop();
        log::info!("server stopped");
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(Error::io("spawn thread", name))
}

fn admin_url(addr: SocketAddr, token: &str) -> String {
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    format!("http://{shown}/admin/jobs?token={token}")
}
