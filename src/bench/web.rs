//! The `api` and `ws` scenarios: a real `jobmgr serve` child process on the
//! scenario's database, driven over loopback HTTP and WebSocket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use std::thread;

use crossbeam_channel::unbounded;

use super::jobtypes::noop_request;
use super::scenarios::Ctx;
use super::{Measurement, TempDir, percentile};
use crate::error::{Error, Result};
use crate::store::{self, bench as sb};

/// The bench's fixed token (the server is on loopback, for seconds).
pub const TOKEN: &str = "jobmgr-bench-token";
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A `jobmgr serve` child (`--no-worker` unless asked for one), stopped on
/// drop: SIGTERM, so that a worker it started stops with it, then SIGKILL
/// if it is still there after a few seconds.
pub struct ServeChild {
    child: Child,
    /// host:port
    pub addr: String,
}

impl ServeChild {
    /// Starts the server on `db` without a worker and waits for its admin URL.
    pub fn start(db: &Path) -> Result<ServeChild> {
        ServeChild::start_with(db, false)
    }

    /// Starts the server on `db`, with the worker it supervises when
    /// `worker`, and waits for its admin URL.
    pub fn start_with(db: &Path, worker: bool) -> Result<ServeChild> {
        let exe = super::own_binary()?;
        let mut cmd = Command::new(exe);
        cmd.arg("--db")
            .arg(db)
            .args(["serve", "--bind", "127.0.0.1:0"]);
        if !worker {
            cmd.arg("--no-worker");
        }
        let mut child = cmd
            .env("JOBMGR_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::io("start server", db))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string);
        match addr {
            Some(addr) => Ok(ServeChild { child, addr }),
            None => {
                let _ = child.kill();
                Err(Error::Internal(format!("server did not start: {line:?}")))
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One GET with the bearer token; returns the status and body size.
    pub fn get(&self, path: &str) -> Result<(u16, usize)> {
        self.get_text(path)
            .map(|(status, answer)| (status, answer.len()))
    }

    /// One GET with the bearer token; returns the status and the whole
    /// answer, head included.
    pub fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let io = |e| Error::Internal(format!("GET {path}: {e}"));
        let mut s = TcpStream::connect(&self.addr).map_err(io)?;
        s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .map_err(io)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(io)?;
        let status = String::from_utf8_lossy(&buf[..buf.len().min(16)])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }

    /// The server's group-commit counters, from its `/metrics`.
    pub fn commit_rounds(&self) -> Result<crate::store::committer::Rounds> {
        let (status, text) = self.get_text("/metrics")?;
        if status != 200 {
            return Err(Error::Internal(format!("GET /metrics answered {status}")));
        }
        // A missing counter is an error, not a zero in the bench's note.
        let value = |name: &str| -> Result<f64> {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .ok_or_else(|| Error::Internal(format!("GET /metrics: no {name}")))
        };
        Ok(crate::store::committer::Rounds {
            rounds: value("jobmgr_commit_rounds_total")? as u64,
            requests: value("jobmgr_commit_requests_total")? as u64,
            gather_us: (value("jobmgr_commit_gather_seconds_total")? * 1e6) as u64,
            commit_us: (value("jobmgr_commit_seconds_total")? * 1e6) as u64,
            lock_us: (value("jobmgr_commit_lock_wait_seconds_total")? * 1e6) as u64,
            sync_us: (value("jobmgr_commit_sync_seconds_total")? * 1e6) as u64,
            answer_us: (value("jobmgr_commit_answer_seconds_total")? * 1e6) as u64,
        })
    }

    /// A WebSocket client on `/ws`.
    pub fn ws(&self) -> Result<tungstenite::WebSocket<TcpStream>> {
        let bad = |e: String| Error::Internal(format!("WebSocket: {e}"));
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .map_err(|e| bad(e.to_string()))?;
        let auth = format!("Bearer {TOKEN}")
            .parse()
            .map_err(|_| bad("header".into()))?;
        req.headers_mut().insert("Authorization", auth);
        let stream = TcpStream::connect(&self.addr).map_err(|e| bad(e.to_string()))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| bad(e.to_string()))?;
        // A small read buffer: tungstenite zeroes its whole buffer (128 KiB
        // by default) for every read, which with 100 readers on the
        // server's 2 cores was a tenth of the CPU the `ws` scenario used.
        let config =
            tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _) = tungstenite::client::client_with_config(req, stream, Some(config))
            .map_err(|e| bad(e.to_string()))?;
        Ok(ws)
    }
}

/// The `ws` readers' read buffer: a message is well under this.
const READ_BUFFER: usize = 8 * 1024;

impl Drop for ServeChild {
    fn drop(&mut self) {
        crate::supervisor::send_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the `ws` readers take from a message.
#[derive(serde::Deserialize)]
struct Progress<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    run: Option<ProgressRun>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProgressRun {
    id: i64,
    entities_processed: Option<i64>,
}

/// Reads `run` events for `run_id` until `last` is seen or the socket
/// fails; returns (processed, arrival) pairs.
pub fn collect_progress(
    mut ws: tungstenite::WebSocket<TcpStream>,
    run_id: i64,
    last: i64,
) -> Vec<(i64, Instant)> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let t = match ws.read() {
            Ok(Message::Text(t)) => t,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => break,
        };
        let at = Instant::now();
        // Only the three fields it needs, the rest skipped unbuilt: a full
        // `Value` per message made the bench's 100 readers, on the same 2
        // cores as the server, a measurable part of what `ws` measured.
        let Ok(m) = serde_json::from_str::<Progress>(t.as_str()) else {
            continue;
        };
        if let (true, Some(run)) = (m.kind == "run", m.run)
            && run.id == run_id
        {
            let k = run.entities_processed.unwrap_or(-1);
            seen.push((k, at));
            if k >= last {
                break;
            }
        }
    }
    seen
}

impl Ctx {
    /// Time from the start of a progress change's commit to its arrival
    /// at `clients` WebSocket clients of a real server.
    pub(super) fn ws(&mut self, clients: usize) -> Result<Measurement> {
        let dir = TempDir::beside(&self.opts.db, "ws")?;
        let m = self.manager(&dir.db())?;
        let run_id = m.enqueue_many(&[noop_request("bench-backlog")])?[0];
        let server = ServeChild::start(&dir.db())?;
        let changes = self.opts.n.clamp(20, 200) as i64;
        let (tx, rx) = unbounded();
        let mut readers = Vec::with_capacity(clients);
        for _ in 0..clients {
            let socket = server.ws()?;
            let tx = tx.clone();
            readers.push(thread::spawn(move || {
                let _ = tx.send(collect_progress(socket, run_id, changes));
            }));
        }
        drop(tx);
        let conn = store::open_connection(&dir.db())?;
        let t = Instant::now();
        let mut committed = Vec::with_capacity(changes as usize);
        let mut commit_ms = Vec::with_capacity(changes as usize);
        for k in 1..=changes {
            // The clock starts before the commit: its fsync is part of
            // what a page waits for.
            let t0 = Instant::now();
            committed.push(t0);
            sb::set_progress(&conn, run_id, k)?;
            commit_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            thread::sleep(Duration::from_millis(25));
        }
        commit_ms.sort_by(f64::total_cmp);
        let mut lat = Vec::new();
        for seen in rx.iter() {
            for (k, at) in seen {
                if let Some(c) = usize::try_from(k - 1).ok().and_then(|i| committed.get(i)) {
                    lat.push(at.saturating_duration_since(*c).as_secs_f64() * 1000.0);
                }
            }
        }
        for r in readers {
            let _ = r.join();
        }
        let took = t.elapsed();
        lat.sort_by(f64::total_cmp);
        let mut out = Measurement::new("ws", lat.len(), clients, took);
        out.lat_p50_ms = percentile(&lat, 50.0);
        out.lat_p95_ms = percentile(&lat, 95.0);
        out.lat_p99_ms = percentile(&lat, 99.0);
        out.note = Some(format!(
            "{clients} client(s), {changes} committed changes; n = deliveries; \
             the commit itself: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&commit_ms, 50.0).unwrap_or(0.0),
            percentile(&commit_ms, 99.0).unwrap_or(0.0)
        ));
        Ok(out)
    }

    /// Latency of the history, details, logs and stats endpoints on a file
    /// with `backlog` finished runs and `history_lines` log lines.
    pub(super) fn api(&mut self) -> Result<Vec<Measurement>> {
        let dir = TempDir::beside(&self.opts.db, "api")?;
        self.manager(&dir.db())?;
        let runs = self.opts.backlog.max(10);
        let lines = (self.opts.history_lines / runs).max(1);
        // Over the last week, so that the insight cases read a full
        // rollup (a row per type and minute) rather than an empty window.
        sb::generate_week(&mut store::open_connection(&dir.db())?, runs, lines)?;
        sb::checkpoint(&store::open_connection(&dir.db())?)?;
        let server = ServeChild::start(&dir.db())?;
        // A failed run from the middle of the history (every tenth fails).
        let id = (runs / 20) * 10 + 1;
        let endpoints = [
            ("api-list", "/api/jobs".to_string()),
            ("api-by-status", "/api/jobs?status=FAILED".to_string()),
            ("api-by-type", "/api/jobs?name=history-feed".to_string()),
            ("api-search", "/api/jobs?q=connection".to_string()),
            ("api-page-2", format!("/api/jobs?cursor={}", runs / 2)),
            ("api-details", format!("/api/jobs/{id}")),
            ("api-logs", format!("/api/jobs/{id}/logs")),
            ("api-stats", "/api/stats".to_string()),
            ("api-errors", "/api/errors?hours=24".to_string()),
            ("api-insight-day", "/api/insight?window=day".to_string()),
            ("api-insight-week", "/api/insight?window=week".to_string()),
        ];
        let requests = self.opts.n.clamp(20, 200);
        let mut out = Vec::new();
        for (mode, path) in endpoints {
            let (status, _) = server.get(&path)?;
            if status != 200 {
                return Err(Error::Internal(format!("GET {path} answered {status}")));
            }
            let mut lat = Vec::with_capacity(requests);
            let t = Instant::now();
            for _ in 0..requests {
                let t0 = Instant::now();
                server.get(&path)?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            lat.sort_by(f64::total_cmp);
            let mut m = Measurement::new(mode, requests, 1, t.elapsed());
            m.lat_p50_ms = percentile(&lat, 50.0);
            m.lat_p95_ms = percentile(&lat, 95.0);
            m.lat_p99_ms = percentile(&lat, 99.0);
            m.note = Some(format!("{runs} runs, {} log lines", runs * lines));
            out.push(m);
        }
        Ok(out)
    }
}
