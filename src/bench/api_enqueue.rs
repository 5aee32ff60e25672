//! The `api-enqueue` scenario: acknowledged `POST /api/jobs` from 1 and
//! from 8 keep-alive HTTP clients against a real `jobmgr serve` child,
//! without a worker and with one draining what is enqueued. Each answer
//! (201) means the run and its audit row are committed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::scenarios::{Ctx, wait_until};
use super::web::{ServeChild, TOKEN};
use super::{Measurement, TempDir, percentile};
use crate::error::{Error, Result};
use crate::worker::WorkerState;

/// The enqueued run: a built-in type (the child has no bench types) that
/// finishes at once when a worker takes it.
const BODY: &str = r#"{"jobName":"demo-known-total","parameters":{"count":1,"delay_ms":0}}"#;
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Round trips timed for the HTTP floor.
const ROUND_TRIPS: usize = 1_000;

/// The processor cores the clients and the server share.
fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

impl Ctx {
    /// 1 and 8 clients, without a worker and with one.
    pub(super) fn api_enqueue(&mut self) -> Result<Vec<Measurement>> {
        self.ensure_raw()?;
        let n = self.opts.single_n();
        let mut out = Vec::new();
        for worker in [false, true] {
            for clients in [1, 8] {
                out.push(self.api_enqueue_with(n, clients, worker)?);
            }
        }
        Ok(out)
    }

    fn api_enqueue_with(&mut self, n: usize, clients: usize, worker: bool) -> Result<Measurement> {
        let mode = if worker {
            "api-enqueue-worker"
        } else {
            "api-enqueue"
        };
        let dir = TempDir::beside(&self.opts.db, &format!("{mode}-{clients}"))?;
        let m = self.manager(&dir.db())?;
        let server = ServeChild::start_with(&dir.db(), worker)?;
        if worker {
            wait_until(Duration::from_secs(60), || {
                Ok(m.worker_status()?
                    .worker
                    .is_some_and(|w| w.state == WorkerState::Running))
            })?;
        }
        // The HTTP round trip alone: a POST can be no faster than it plus
        // a commit.
        let floor = match (clients, worker) {
            (1, false) => Some(Client::connect(&server.addr)?.round_trip_p50()?),
            _ => None,
        };
        let start = Arc::new(Barrier::new(clients + 1));
        let mut handles = Vec::with_capacity(clients);
        for i in 0..clients {
            // The first n % clients clients send one more.
            let requests = n / clients + usize::from(i < n % clients);
            let mut client = Client::connect(&server.addr)?;
            let start = start.clone();
            handles.push(thread::spawn(move || -> Result<Vec<f64>> {
                start.wait();
                let mut lat = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let t0 = Instant::now();
                    client.enqueue()?;
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(lat)
            }));
        }
        let rounds_before = server.commit_rounds()?;
        let cpu_before =
            super::proc_cpu_seconds(Some(server.pid())) + super::proc_cpu_seconds(None);
        start.wait();
        let t = Instant::now();
        let mut lat = Vec::with_capacity(n);
        for h in handles {
            let mine = h
                .join()
                .map_err(|_| Error::Internal("HTTP client panicked".into()))??;
            lat.extend(mine);
        }
        let took = t.elapsed();
        // serve's CPU and this process's (the clients), over the POSTs
        // only; a worker under serve is its child and not counted.
        let cpu = super::proc_cpu_seconds(Some(server.pid())) + super::proc_cpu_seconds(None)
            - cpu_before;
        let rounds = server.commit_rounds()?;
        lat.sort_by(f64::total_cmp);
        let mut out = Measurement::new(mode, lat.len(), clients, took);
        out.raw_ratio = self.ratio(out.rate, false);
        out.lat_p50_ms = percentile(&lat, 50.0);
        out.lat_p95_ms = percentile(&lat, 95.0);
        out.lat_p99_ms = percentile(&lat, 99.0);
        let per_post_us = cpu * 1e6 / lat.len().max(1) as f64;
        let (made, requests) = (
            rounds.rounds.saturating_sub(rounds_before.rounds).max(1),
            rounds.requests.saturating_sub(rounds_before.requests),
        );
        let mut note = format!(
            "{clients} keep-alive client(s), {}; serve and clients CPU {per_post_us:.0} µs per \
             POST, so {} cores allow at most {:.0}/s; a round: {:.1} POSTs, {}",
            if worker {
                "a worker draining them"
            } else {
                "no worker"
            },
            cores(),
            cores() as f64 * 1e6 / per_post_us.max(1.0),
            requests as f64 / made as f64,
            super::scenarios::round_parts(rounds_before, rounds),
        );
        if let (Some(floor_ms), Some(raw)) = (floor, self.ratio(1.0, false)) {
            // One request at a time: a commit as fast as raw's, plus the
            // round trip, at best.
            let raw_ms = raw * 1000.0;
            let best = 1000.0 / (raw_ms + floor_ms);
            note.push_str(&format!(
                "; HTTP alone (GET /healthz) p50 {floor_ms:.3} ms: with raw's {raw_ms:.3} ms \
                 commit one client reaches at most {best:.0}/s ({:.2} × raw)",
                best * raw_ms / 1000.0
            ));
        }
        out.note = Some(note);
        Ok(out)
    }
}

/// One keep-alive connection sending `POST /api/jobs`.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Arc<[u8]>,
    addr: String,
}

impl Client {
    fn connect(addr: &str) -> Result<Client> {
        let io = |e: std::io::Error| Error::Internal(format!("connect to {addr}: {e}"));
        let stream = TcpStream::connect(addr).map_err(io)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let request = format!(
            "POST /api/jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        )
        .into_bytes();
        Ok(Client {
            reader: BufReader::new(stream.try_clone().map_err(io)?),
            writer: stream,
            request: request.into(),
            addr: addr.to_string(),
        })
    }

    /// Sends one enqueue and reads its whole answer, which must be 201.
    fn enqueue(&mut self) -> Result<()> {
        let request = Arc::clone(&self.request);
        self.exchange("POST /api/jobs", &request, "201")
    }

    /// The median of 1,000 `GET /healthz` round trips, in ms.
    fn round_trip_p50(&mut self) -> Result<f64> {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr).into_bytes();
        let mut lat = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let t0 = Instant::now();
            self.exchange("GET /healthz", &request, "200")?;
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        Ok(percentile(&lat, 50.0).unwrap_or(0.0))
    }

    /// Sends `request` and reads its whole answer, whose status must be
    /// `expected`.
    fn exchange(&mut self, what: &str, request: &[u8], expected: &str) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(format!("{what}: {e}"));
        self.writer.write_all(request).map_err(io)?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(io)?;
        let status = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).map_err(io)? == 0 {
                return Err(Error::Internal(format!("{what}: connection closed")));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).map_err(io)?;
        if status != expected {
            return Err(Error::Internal(format!(
                "{what} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }
}
