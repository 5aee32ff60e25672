//! The `api` and `ws` scenarios: a real `jobmgr serve` child process on the
//! scenario's database, driven over loopback HTTP and WebSocket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

use crate::error::{Error, Result};

/// The bench's fixed token (the server is on loopback, for seconds).
pub const TOKEN: &str = "jobmgr-bench-token";
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A `jobmgr serve --no-worker` child, killed on drop.
pub struct ServeChild {
    child: Child,
    /// host:port
    pub addr: String,
}

impl ServeChild {
    /// Starts the server on `db` and waits for its admin URL.
    pub fn start(db: &Path) -> Result<ServeChild> {
        let exe = std::env::current_exe().map_err(Error::io("find own binary", db))?;
        let mut child = Command::new(exe)
            .arg("--db")
            .arg(db)
            .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"])
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
                Err(Error::Conflict(format!("server did not start: {line:?}")))
            }
        }
    }

    /// One GET with the bearer token; returns the status and body size.
    pub fn get(&self, path: &str) -> Result<(u16, usize)> {
        let io = |e| Error::Conflict(format!("GET {path}: {e}"));
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
        Ok((status, buf.len()))
    }

    /// A WebSocket client on `/ws`.
    pub fn ws(&self) -> Result<tungstenite::WebSocket<TcpStream>> {
        let bad = |e: String| Error::Conflict(format!("WebSocket: {e}"));
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
        let (ws, _) = tungstenite::client(req, stream).map_err(|e| bad(e.to_string()))?;
        Ok(ws)
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
            continue;
        };
        if v["type"] == "run" && v["run"]["id"] == run_id {
            let k = v["run"]["entitiesProcessed"].as_i64().unwrap_or(-1);
            seen.push((k, at));
            if k >= last {
                break;
            }
        }
    }
    seen
}
