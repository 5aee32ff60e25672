//! What the notification tests share: a database on a driven clock with
//! command job types that fail, a worker on that clock, and a local
//! webhook receiver: a std TcpListener on port 0 whose thread records
//! every request (headers and JSON body) and answers each with the next
//! reply of its script (200 once the script is used up), or holds it
//! unanswered.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::common::clock::DrivenClock;
use super::common::{TestDb, Worker};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Reads the request and never answers (the connection stays open).
    Hold,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Got {
    /// The `X-Jobmgr-Delivery` header: the outbox row's id.
    pub fn delivery(&self) -> String {
        self.headers
            .get("x-jobmgr-delivery")
            .cloned()
            .unwrap_or_default()
    }
}

/// A receiver running in a thread of the test.
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    /// Starts a receiver answering with `script`, then 200.
    pub fn start(script: &[Reply]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (g, s) = (got.clone(), script.clone());
        std::thread::spawn(move || {
            // Held connections stay open for the test's life.
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                if let Some(hold) = serve_one(stream, &g, &s) {
                    held.push(hold);
                }
            }
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
            script,
        }
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    pub fn wait_for(&self, n: usize, within: Duration, what: &str) -> Vec<Got> {
        let mut all = Vec::new();
        let ok = super::common::poll_until(within, || {
            all = self.got();
            all.len() >= n
        });
        assert!(ok, "timed out waiting for {what}: got {all:#?}");
        all
    }
}

/// Reads one request, records it and answers it; returns the stream when
/// it is to be held.
fn serve_one(
    stream: TcpStream,
    got: &Mutex<Vec<Got>>,
    script: &Mutex<VecDeque<Reply>>,
) -> Option<TcpStream> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = script
        .lock()
        .ok()
        .and_then(|mut s| s.pop_front())
        .unwrap_or(Reply::Status(200));
    if let Ok(mut g) = got.lock() {
        g.push(Got {
            method,
            path,
            headers,
            body,
        });
    }
    match reply {
        Reply::Hold => Some(stream),
        Reply::Status(code) => {
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {code} Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            None
        }
    }
}

pub const WAIT: Duration = Duration::from_secs(60);

/// Command job types: `fails` exits 3 at once; `flaky` fails too, and is
/// tried twice, an hour apart.
pub const JOBS: &str = r#"
[jobs.fails]
command = ["sh", "-c", "echo boom >&2; exit 3"]

[jobs.flaky]
command = ["sh", "-c", "echo flaky >&2; exit 4"]

[policies.flaky.retry]
max_attempts = 2
initial_secs = 3600
backoff = "fixed"
"#;

/// A database on a driven clock (standing at the real time), with `notify`
/// and [`JOBS`] as its jobmgr.toml.
pub fn setup(name: &str, notify: &str) -> (TestDb, DrivenClock) {
    let db = TestDb::new(name);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let clock = DrivenClock::new(&db, now);
    std::fs::write(db.dir.join("jobmgr.toml"), format!("{JOBS}\n{notify}")).expect("config");
    db.ok(&["migrate"]);
    (db, clock)
}

/// Starts a worker on the driven clock; each one logs to a file of its own.
pub fn start_worker(db: &TestDb, clock: &DrivenClock) -> Worker {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let mut cmd = db.cmd();
    clock.apply(&mut cmd);
    cmd.args(["worker", "--concurrency", "2"]);
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    db.spawn_worker_cmd(cmd, &format!("worker-{n}.log"))
}

pub fn webhook(receiver: &Receiver, on: &str, extra: &str) -> String {
    format!(
        "[[notify]]\nname = \"ops\"\non = [{on}]\nwebhook = \"{}\"\n{extra}\n",
        receiver.url
    )
}

/// The outbox rows as (event, subject, status, attempts, lastError).
pub fn outbox(db: &TestDb) -> Vec<Vec<Value>> {
    db.query(
        "SELECT event, subject, status, attempts, coalesce(lastError, ''), nextAttemptAt, id \
         FROM NotifyOutbox ORDER BY id",
    )
}
