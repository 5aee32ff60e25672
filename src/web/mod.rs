//! The HTTP server of `jobmgr serve`: each request is answered on the
//! tiny_http connection thread that read it, a fixed number at once (past a
//! backlog waiting behind them they are answered 503, which caps the work
//! in flight; see `gate.rs`), after checks of Host, auth,
//! Origin, method and size limits, and routes each request to a plain
//! `fn(&Ctx, &Req) -> Result<Reply>`; a handler's panic is caught and
//! answered 500. WebSocket upgrades get their own thread. Below that, the
//! vendored tiny_http holds every client to the limits set here (request
//! head, body, deadline, open connections) before a request is handed out.

mod api_bulk;
mod api_insight;
mod api_jobs;
mod api_notify;
mod api_schedules;
mod api_worker;
pub mod assets;
pub mod auth;
mod gate;
mod http;
pub mod live;
mod metrics;
mod router;
mod run_body;
mod ws;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;
use tiny_http::{Limits, Method, Request, Server};

use crate::error::{Error, Result};
use crate::events::Hub;
use crate::maintenance::ticker::Reports;
use crate::manager::{Manager, WorkerStatus};
use crate::supervisor::Supervisor;

pub use http::{Reply, Req};

// What one client can make the server hold, all in one place (the README's
// Security section lists them).

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest request head (request line and headers) accepted: 431 past it.
pub const MAX_HEADERS: usize = 16 * 1024;
/// Longest request line (414 past it) or header line (431).
const MAX_LINE: usize = 8 * 1024;
/// Most header lines in one request (431 past it).
const MAX_HEADER_COUNT: usize = 100;
/// Time a request may take to arrive whole, from its first byte (408 past
/// it); `--client-timeout` when that is shorter. Bodies up to `MAX_BODY`
/// are read before a handler gets the request, so a client sending slowly
/// holds only its own connection's thread.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once, each read by a thread of its own; past it a
/// new connection is answered 503 `busy` and closed.
const MAX_CONNECTIONS: usize = 512;
/// Plain HTTP requests answered at once.
const HANDLERS: usize = 8;
/// Requests to the `--metrics-bind` address answered at once: a scraper
/// asks about once every few seconds.
const SCRAPE_HANDLERS: usize = 2;
/// Requests waiting for their turn before new ones get 503.
const BACKLOG: usize = 64;
/// Live WebSocket clients at most (each kind). An upgraded socket keeps
/// its connection's place under `MAX_CONNECTIONS`, so both kinds together
/// stay well below it: clients holding every socket still leave 128 places
/// for plain requests (`/healthz`, the API, the page).
pub const MAX_SOCKETS: usize = 192;

/// Sets the send timeout on the listening socket. Linux copies it to every
/// connection `accept` returns, and tiny_http accepts on its own thread, so
/// this is the one place to set it; std offers no setter for a listener.
/// (Not the receive timeout: on a listener it also bounds `accept`.)
#[allow(unsafe_code)]
fn set_send_timeout(listener: &TcpListener, timeout: Duration) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid socket descriptor, and a timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Everything a handler needs.
pub struct Ctx {
    pub manager: Manager,
    pub hub: Arc<Hub>,
    pub token: String,
    pub supervisor: Arc<Supervisor>,
    /// Host header values this server answers to.
    pub hosts: Vec<String>,
    /// Open log-follow sockets.
    pub followers: Arc<AtomicUsize>,
    /// Dropped at shutdown: follow sockets watch it to end.
    pub shutdown: Receiver<()>,
    /// The log-follow sockets' threads, joined at shutdown.
    pub sockets: Sockets,
    /// The live sockets' writer, joined at shutdown once the hub is closed.
    pub live: live::Live,
    /// What the maintenance tasks have done, for `GET /api/worker`.
    pub tasks: Reports,
    /// Wakes the bulk thread when a handler recorded a bulk action.
    pub bulk_wake: Sender<()>,
}

/// The threads serving log-follow WebSockets (live ones are all written by
/// [`live::Live`]). Each is kept until
/// it ends, so shutdown can wait for every one; handles of threads that
/// have ended are dropped as new ones arrive.
#[derive(Default)]
pub struct Sockets(Mutex<Vec<JoinHandle<()>>>);

impl Sockets {
    fn add(&self, thread: JoinHandle<()>) {
        if let Ok(mut all) = self.0.lock() {
            all.retain(|t| !t.is_finished());
            all.push(thread);
        }
    }

    /// Joins every socket thread. Called once the hub is closed and the
    /// stop channel dropped, so each is on its way out; one blocked writing
    /// to a client that stopped reading ends within the client timeout.
    pub fn join_all(&self) {
        let all = self.0.lock().map(|mut v| std::mem::take(&mut *v));
        for t in all.unwrap_or_default() {
            let _ = t.join();
        }
    }
}

/// The worker status object of the API: see [`WorkerStatus::view`].
pub fn worker_json(status: &WorkerStatus, supervised_pid: Option<u32>) -> Value {
    status.view(supervised_pid)
}

/// The Host header values a server bound to `addr` accepts.
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![
        addr.to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ];
    hosts.dedup();
    hosts
}

/// What answers a server's requests once it is started.
type Serving = (Arc<Ctx>, fn(&Ctx, Request));

/// A bound server, answering nothing until [`WebServer::start`]: its
/// requests wait at the gate. Dropped, it answers no new request, waits
/// for those being answered, and stops accepting.
pub struct Bound {
    gate: Arc<gate::Gate<Serving>>,
    // Dropped after the gate is closed (fields drop after `drop`).
    _server: Server,
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.gate.close();
    }
}

/// A running HTTP server.
pub struct WebServer {
    bound: Bound,
}

/// Binds `bind` (port 0 picks a free port). A write that a client leaves
/// unread for `client_timeout` fails, and the connection is closed:
/// otherwise a client that stops reading would hold its thread (and a
/// WebSocket slot) blocked in a write forever. The vendored tiny_http gives
/// each connection the same timeout for reads, so one that sends nothing
/// is closed too.
pub fn bind(bind: &str, client_timeout: Duration) -> Result<(Bound, SocketAddr)> {
    let listen_error = |e: &dyn std::fmt::Display| Error::Invalid(format!("listen on {bind}: {e}"));
    let listener = TcpListener::bind(bind).map_err(|e| listen_error(&e))?;
    set_send_timeout(&listener, client_timeout).map_err(|e| listen_error(&e))?;
    let limits = Limits {
        max_line: MAX_LINE,
        max_headers: MAX_HEADER_COUNT,
        max_head: MAX_HEADERS,
        max_buffered_body: MAX_BODY,
        request_timeout: Some(REQUEST_TIMEOUT.min(client_timeout)),
        max_connections: Some(MAX_CONNECTIONS),
        refusal: http::refusal,
    };
    let gate = Arc::new(gate::Gate::new(BACKLOG));
    let admit = gate.clone();
    let handler = Arc::new(move |request: Request| admitted(&admit, request));
    let server = Server::from_listener_with_handler(listener, None, limits, handler)
        .map_err(|e| listen_error(&e))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Invalid(format!("listen on {bind}: not an IP address")))?;
    Ok((
        Bound {
            gate,
            _server: server,
        },
        addr,
    ))
}

/// Answers `request` on its connection's thread once the gate lets it in.
/// A thread of our own taking requests from a queue cost each request two
/// thread wake-ups (connection thread to handler and back, before the
/// connection's next request is read): on two loaded cores, more wall time
/// than the request's own work.
fn admitted(gate: &gate::Gate<Serving>, request: Request) {
    match gate.enter() {
        Ok((_permit, (ctx, handle))) => guarded(|| handle(&ctx, request)),
        Err(gate::Refused::Busy) => {
            let _ = request.respond(http::error_reply(
                503,
                "busy",
                "too many requests in flight",
            ));
        }
        Err(gate::Refused::Closed) => {
            let _ = request.respond(http::error_reply(503, "busy", "the server is stopping"));
        }
    }
}

impl WebServer {
    /// Starts answering on a bound server.
    pub fn start(bound: Bound, ctx: Arc<Ctx>) -> Result<WebServer> {
        Ok(WebServer::start_with(bound, ctx, HANDLERS, handle))
    }

    /// The same for the `--metrics-bind` address: a small pool that
    /// answers `GET /metrics` without a token, and nothing else.
    pub fn start_metrics(bound: Bound, ctx: Arc<Ctx>) -> Result<WebServer> {
        Ok(WebServer::start_with(
            bound,
            ctx,
            SCRAPE_HANDLERS,
            metrics::handle_scrape,
        ))
    }

    fn start_with(
        bound: Bound,
        ctx: Arc<Ctx>,
        handlers: usize,
        handle: fn(&Ctx, Request),
    ) -> WebServer {
        bound.gate.open(handlers, (ctx, handle));
        WebServer { bound }
    }

    /// Answers no new request and waits for those being answered (and
    /// those already waiting their turn), then stops accepting.
    pub fn stop(self) {
        drop(self.bound);
    }
}

/// Handles a request under a catch, so a panic (a bug) costs that request,
/// not the connection's thread. A panic past [`caught`] drops the request,
/// which tiny_http answers 500.
fn guarded(handle: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(handle)).is_err() {
        log::error!("an HTTP handler panicked; the request was answered 500");
    }
}

/// Runs a route handler; its error, or its panic, becomes the reply.
fn caught(path: &str, handler: impl FnOnce() -> Result<Reply>) -> Reply {
    match std::panic::catch_unwind(AssertUnwindSafe(handler)) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => http::error_from(&e),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("handler for {path} panicked: {what}");
            http::error_reply(
                500,
                "internal_error",
                "internal error (logged by the server)",
            )
        }
    }
}

/// Checks one request and answers it.
fn handle(ctx: &Ctx, mut request: Request) {
    let pre = match router::precheck(ctx, &request) {
        Ok(p) => p,
        Err(reply) => {
            let _ = request.respond(reply);
            return;
        }
    };
    if pre.websocket {
        ws::upgrade(ctx, request, pre);
        return;
    }
    let mut body = Vec::new();
    if matches!(request.method(), Method::Post | Method::Put) {
        let limited = request
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body);
        if limited.is_err() {
            let _ = request.respond(http::error_reply(
                400,
                "invalid_input",
                "could not read the request body",
            ));
            return;
        }
        if body.len() > MAX_BODY {
            let _ = request.respond(http::too_large());
            return;
        }
    }
    let req = Req::new(&request, pre, body);
    let reply = caught(&req.path, || (req.handler)(ctx, &req));
    if let Err(e) = request.respond(reply) {
        log::debug!("answer {}: {e}", req.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_is_answered_500() {
        let reply = caught("/api/x", || panic!("a bug"));
        assert_eq!(reply.status_code().0, 500);
        let ok = caught("/api/x", || Ok(http::error_reply(404, "not_found", "no")));
        assert_eq!(ok.status_code().0, 404);
    }

    #[test]
    fn a_handler_thread_survives_a_panic() {
        let done = std::sync::Mutex::new(Vec::new());
        for i in [1, 2, 3] {
            guarded(|| {
                assert_ne!(i, 2, "a bug in request 2");
                done.lock().unwrap().push(i);
            });
        }
        assert_eq!(
            *done.lock().unwrap(),
            [1, 3],
            "the request after the panic was served"
        );
    }
}
