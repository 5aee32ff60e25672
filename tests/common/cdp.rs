//! A small Chrome DevTools Protocol client for browser tests: launches
//! headless Chromium in its own process group (killed with the test thread
//! through PR_SET_PDEATHSIG), attaches to one page and evaluates JavaScript.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

static PROFILES: AtomicU64 = AtomicU64::new(0);

/// One headless browser with one attached page.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    /// Launches Chromium with a fresh profile inside `dir` and opens a blank page.
    pub fn launch(dir: &Path, width: u32, height: u32) -> Browser {
        // Short on purpose: Chromium's singleton socket lands inside the
        // profile (TMPDIR) and a Unix socket path is limited to 108 bytes.
        let profile = std::env::temp_dir().join(format!(
            "cdp{}-{}",
            std::process::id(),
            PROFILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).expect("create chromium profile dir");
        let log = dir.join(format!("chromium-{width}.log"));
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--remote-debugging-port=0",
            &format!("--window-size={width},{height}"),
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .env("TMPDIR", &profile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("create chromium log"))
        .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // the browser when the thread that spawned it exits.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn chromium");
        let (port, path) = read_devtools_port(&profile, &log);
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromium");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set read timeout");
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("devtools handshake");
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            profile,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b.page("Page.enable", json!({}));
        // Headless windows have a minimum width; emulate phone sizes exactly.
        b.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        );
        b
    }

    /// Sends a command (to the page session when `session` is given) and
    /// returns its result, panicking on a protocol error.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .unwrap_or_else(|err| panic!("devtools {method} failed: {err}"))
    }

    /// Like [`Self::call`], with a protocol error (such as an evaluation
    /// cut short by a navigation) returned instead.
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send devtools command");
        loop {
            let reply = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(e) => panic!("devtools read during {method}: {e}"),
            };
            let v: Value = serde_json::from_str(reply.as_str()).expect("devtools JSON");
            if v["id"].as_u64() != Some(id) {
                continue; // an event, or an answer to an earlier command
            }
            if let Some(err) = v.get("error") {
                return Err(err.to_string());
            }
            return Ok(v["result"].clone());
        }
    }

    /// Sends a command to the attached page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Navigates the page to `url`.
    pub fn navigate(&mut self, url: &str) {
        self.page("Page.navigate", json!({"url": url}));
    }

    /// Reloads the page and waits until the new document has loaded: a
    /// check made right after `location.reload()` could still read the old
    /// document, which shows what the reload should show too.
    pub fn reload(&mut self) {
        self.eval("window.__jobmgrBeforeReload = true; location.reload()");
        self.wait_js(
            "the reloaded document",
            Duration::from_secs(30),
            "window.__jobmgrBeforeReload === undefined && document.readyState === 'complete'",
        );
    }

    /// Evaluates `expr` (awaiting promises) and returns its value; a thrown
    /// exception comes back as `Err` with its description.
    pub fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let session = self.session.clone();
        let r = self.try_call(
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str())
                .unwrap_or("exception");
            return Err(text.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expr`, panicking if it throws.
    pub fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr)
            .unwrap_or_else(|e| panic!("evaluating {expr}: {e}"))
    }

    /// Polls the predicate `expr` until it is `true` (errors while the page
    /// loads count as "not yet"); panics naming `what` after `within`.
    pub fn wait_js(&mut self, what: &str, within: Duration, expr: &str) {
        if let Err(last) = self.poll_js(within, expr) {
            panic!("timed out after {within:?} waiting for {what} (last: {last})");
        }
    }

    /// Polls the predicate `expr` until it is `true`; on timeout returns
    /// the last value or error seen.
    pub fn poll_js(&mut self, within: Duration, expr: &str) -> Result<(), String> {
        let mut last = String::new();
        let done = crate::common::poll_until(within, || match self.try_eval(expr) {
            Ok(Value::Bool(true)) => true,
            Ok(v) => {
                last = v.to_string();
                false
            }
            Err(e) => {
                last = e;
                false
            }
        });
        if done { Ok(()) } else { Err(last) }
    }

    /// Takes a PNG screenshot of the page into `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        let data = decode_base64(r["data"].as_str().expect("screenshot data"));
        std::fs::write(path, data).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.next_id += 1;
        let close = json!({"id": self.next_id, "method": "Browser.close"});
        let _ = self.ws.send(Message::text(close.to_string()));
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals only the process group this browser leads.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Reads the port and browser path from `DevToolsActivePort`.
fn read_devtools_port(profile: &Path, log: &Path) -> (u16, String) {
    let file = profile.join("DevToolsActivePort");
    let mut found = None;
    crate::common::poll_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let mut lines = text.lines();
        if let (Some(port), Some(path)) = (lines.next(), lines.next())
            && let Ok(port) = port.trim().parse()
        {
            found = Some((port, path.trim().to_string()));
        }
        found.is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium did not write {}; its stderr:\n{}",
            file.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

/// Standard base64 decoding (screenshots only; no crate needed for that).
fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| {
            acc | (u32::from(val(c)) << (18 - 6 * i))
        });
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
