//! What the browser tests share: a `jobmgr serve` whose admin URL is read
//! from its first line, Chromium's presence, opening the page with its
//! token, screenshots, and reading the page's text.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use super::cdp::{self, Browser};
use super::{TestDb, wait_for};
use serde_json::Value;

/// Browser tests run one at a time: the machine has two shared cores and
/// each test starts a server, a worker and a browser.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub const WAIT: Duration = Duration::from_secs(20);

/// Whether Chromium is there; in CI its absence fails the test, elsewhere
/// it is reported loudly as a skip.
pub fn chromium_available() -> bool {
    if Path::new(cdp::CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: browser tests cannot run in CI without it",
        cdp::CHROMIUM
    );
    eprintln!(
        "\n*** SKIPPED: chromium not installed ({}) ***\n",
        cdp::CHROMIUM
    );
    false
}

/// A running `jobmgr serve`, stopped with SIGTERM on drop.
pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Serve {
    pub fn start(db: &TestDb) -> Serve {
        Serve::start_with(db, &[])
    }

    pub fn start_with(db: &TestDb, extra: &[&str]) -> Serve {
        let mut child = db
            .cmd()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(db.dir.join("serve.log")).expect("create serve log"))
            .spawn()
            .expect("spawn jobmgr serve");
        let stdout = child.stdout.take().expect("serve stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("serve printed no URL; log:\n{}", serve_log(db)));
        let url = first
            .strip_prefix("jobmgr admin: ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        assert!(url.contains("/admin/jobs?token="), "{url}");
        Serve { child, url }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM lets serve stop the worker it started.
        if !(super::send_signal(self.child.id(), "TERM")
            && super::exit_code(&mut self.child, Duration::from_secs(5)).is_some())
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server's TCP connections with request bytes nobody has read
/// (`ss` Recv-Q > 0): a stuck page load shows up here when the HTTP server
/// never serves a connection it accepted.
pub fn unread_sockets(url: &str) -> String {
    let port = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap_or("");
    let out = std::process::Command::new("ss")
        .args([
            "-tnH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.split_whitespace().next().is_some_and(|q| q != "0"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn serve_log(db: &TestDb) -> String {
    std::fs::read_to_string(db.dir.join("serve.log")).unwrap_or_default()
}

/// Saves a screenshot in the test dir, and in `JOBMGR_TEST_SCREENSHOTS`
/// when set (the test dir is removed afterwards).
pub fn screenshot(b: &mut Browser, db: &TestDb, name: &str) {
    let path = db.dir.join(format!("{name}.png"));
    b.screenshot(&path);
    let meta = std::fs::metadata(&path).expect("screenshot written");
    assert!(meta.len() > 1000, "screenshot {name} is suspiciously small");
    if let Some(dir) = std::env::var_os("JOBMGR_TEST_SCREENSHOTS") {
        let _ = std::fs::copy(&path, Path::new(&dir).join(format!("{name}.png")));
    }
}

/// Starts server and browser, loads the page with the token and waits for
/// the worker to show RUNNING.
pub fn open_page(db: &TestDb, width: u32, height: u32) -> (Serve, Browser) {
    let serve = Serve::start(db);
    wait_for("the worker to register", WAIT, || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    let b = load_page(db, &serve, width, height);
    (serve, b)
}

/// Opens the page of a running server and waits until the worker panel
/// shows RUNNING and the Live badge is on.
pub fn load_page(db: &TestDb, serve: &Serve, width: u32, height: u32) -> Browser {
    let mut b = Browser::launch(&db.dir, width, height);
    b.navigate(&serve.url);
    b.wait_js(
        "the token to be traded for a cookie",
        WAIT,
        "location.pathname === '/admin/jobs' && !location.search.includes('token')",
    );
    let running = b.poll_js(
        WAIT,
        "document.getElementById('worker-state')?.textContent === 'RUNNING'",
    );
    if let Err(last) = running {
        let loaded = b.eval(
            "JSON.stringify(performance.getEntriesByType('resource').map(e => e.name.split('/').pop()))",
        );
        panic!(
            "the worker panel never showed RUNNING (last: {last}); files loaded: {loaded}\n\
             server sockets holding unread requests:\n{}\nserve log:\n{}",
            unread_sockets(&serve.url),
            serve_log(db)
        );
    }
    b.wait_js(
        "the Live badge",
        WAIT,
        "document.getElementById('live-badge')?.dataset.state === 'live'",
    );
    b
}

pub fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

pub fn text_of(b: &mut Browser, selector: &str) -> String {
    let v = b.eval(&format!(
        "document.querySelector({})?.textContent ?? ''",
        js_str(selector)
    ));
    v.as_str().unwrap_or_default().to_string()
}
