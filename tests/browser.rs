//! Browser tests: `jobmgr serve` on a temporary database, driven through
//! real headless Chromium over the DevTools protocol. Each test has its own
//! database, server, port and browser.

#[path = "common/cdp.rs"]
mod cdp;
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use cdp::Browser;
use common::{TestDb, wait_for};
use serde_json::Value;

/// Browser tests run one at a time: the machine has two shared cores and
/// each test starts a server, a worker and a browser.
static SERIAL: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(20);

/// Whether Chromium is there; in CI its absence fails the test, elsewhere
/// it is reported loudly as a skip.
fn chromium_available() -> bool {
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
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(db: &TestDb) -> Serve {
        Serve::start_with(db, &[])
    }

    fn start_with(db: &TestDb, extra: &[&str]) -> Serve {
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
        if !(common::send_signal(self.child.id(), "TERM")
            && common::exit_code(&mut self.child, Duration::from_secs(5)).is_some())
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server's TCP connections with request bytes nobody has read
/// (`ss` Recv-Q > 0): a stuck page load shows up here when the HTTP server
/// never serves a connection it accepted.
fn unread_sockets(url: &str) -> String {
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

fn serve_log(db: &TestDb) -> String {
    std::fs::read_to_string(db.dir.join("serve.log")).unwrap_or_default()
}

/// Saves a screenshot in the test dir, and in `JOBMGR_TEST_SCREENSHOTS`
/// when set (the test dir is removed afterwards).
fn screenshot(b: &mut Browser, db: &TestDb, name: &str) {
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
fn open_page(db: &TestDb, width: u32, height: u32) -> (Serve, Browser) {
    let serve = Serve::start(db);
    wait_for("the worker to register", WAIT, || {
        db.scalar("SELECT count(*) FROM Worker WHERE state = 'RUNNING'") == "1"
    });
    let b = load_page(db, &serve, width, height);
    (serve, b)
}

/// Opens the page of a running server and waits until the worker panel
/// shows RUNNING and the Live badge is on.
fn load_page(db: &TestDb, serve: &Serve, width: u32, height: u32) -> Browser {
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

fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

fn text_of(b: &mut Browser, selector: &str) -> String {
    let v = b.eval(&format!(
        "document.querySelector({})?.textContent ?? ''",
        js_str(selector)
    ));
    v.as_str().unwrap_or_default().to_string()
}

#[test]
fn enqueue_through_form_and_follow_progress_and_logs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-form");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    b.eval("window.__sameDocument = true");
    assert_eq!(
        b.eval("document.getElementById('worker-version')?.textContent.length > 0"),
        Value::Bool(true),
        "the worker panel shows a version"
    );

    // Open the form, pick the type: fields come from the declared parameters.
    b.eval("document.getElementById('newjob-open').click()");
    b.wait_js(
        "job types in the picker",
        WAIT,
        "[...document.getElementById('newjob-type').options].some(o => o.value === 'demo-known-total')",
    );
    // A value only the server can judge: its 400 message is shown in the
    // form and beside the parameter it names.
    b.eval(
        "{ const s = document.getElementById('newjob-type'); s.value = 'backup-database'; \
         s.dispatchEvent(new Event('change')) }",
    );
    b.wait_js(
        "the path field",
        WAIT,
        "document.getElementById('param-path')?.type === 'text'",
    );
    b.eval(
        "document.getElementById('param-path').value = 'x'.repeat(5000); \
         document.getElementById('newjob-submit').click()",
    );
    b.wait_js(
        "the server's 400 message",
        WAIT,
        "document.getElementById('newjob-error').textContent.startsWith(\"parameter 'path': longer than\") && \
         document.getElementById('param-path-error').textContent.length > 0",
    );
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "0");

    b.eval(
        "{ const s = document.getElementById('newjob-type'); s.value = 'demo-known-total'; \
         s.dispatchEvent(new Event('change')) }",
    );
    b.wait_js(
        "the generated fields with their defaults",
        WAIT,
        "document.getElementById('param-count')?.value === '100' && \
         document.getElementById('param-delay_ms')?.type === 'number'",
    );

    // Client-side validation stops a value below the declared minimum.
    b.eval(
        "document.getElementById('param-count').value = '-5'; \
         document.getElementById('newjob-submit').click()",
    );
    b.wait_js(
        "the validation message",
        WAIT,
        "document.getElementById('param-count-error').textContent === 'Must be at least 0.'",
    );
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "0");

    b.eval(
        "document.getElementById('param-count').value = '60'; \
         document.getElementById('param-delay_ms').value = '100'; \
         document.getElementById('newjob-submit').click()",
    );
    b.wait_js(
        "the new run's details to open",
        WAIT,
        "/^#\\/runs\\/\\d+$/.test(location.hash) && document.getElementById('details').open",
    );
    let id: i64 = b
        .eval("Number(location.hash.split('/')[2])")
        .as_i64()
        .expect("run id");
    assert_eq!(
        db.scalar(&format!("SELECT jobName FROM JobRun WHERE id = {id}")),
        "demo-known-total"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT json_extract(parameters, '$.count') FROM JobRun WHERE id = {id}"
        )),
        "60"
    );

    // Progress text changes while the page stays the same document.
    b.wait_js(
        "known-total progress text",
        WAIT,
        "/^Processing items \\([1-9][\\d,]* \\/ 60\\) \\d+%$/.test(document.getElementById('details-progress')?.textContent)",
    );
    let first = text_of(&mut b, "#details-progress");
    b.wait_js(
        "the progress text to change",
        WAIT,
        &format!(
            "(document.getElementById('details-progress')?.textContent ?? '') !== {} || \
             document.querySelector('#details-status .status')?.textContent === 'COMPLETED'",
            js_str(&first)
        ),
    );
    let active = format!("#active-list [data-run-id=\"{id}\"] .progress-text");
    let in_list = text_of(&mut b, &active);
    assert!(
        in_list.is_empty() || in_list.starts_with("Processing items ("),
        "active panel shows {in_list:?}"
    );

    // The log viewer shows the run's lines, followed live.
    b.wait_js(
        "log lines in the viewer",
        WAIT,
        "[...document.querySelectorAll('.log-viewer .log-msg')].some(m => m.textContent.startsWith('processed '))",
    );
    b.wait_js(
        "the run to complete in the details",
        Duration::from_secs(30),
        "document.querySelector('#details-status .status')?.textContent === 'COMPLETED'",
    );
    b.wait_js(
        "the final log line and the end of the stream",
        WAIT,
        "[...document.querySelectorAll('.log-viewer .log-msg')].some(m => m.textContent === 'done: 60 items processed') && \
         document.querySelector('.log-state')?.dataset.state === 'ended'",
    );
    // The details name the worker that ran it, from its Worker row.
    let version = db.scalar("SELECT version FROM Worker ORDER BY id DESC LIMIT 1");
    b.wait_js(
        "the worker's host and version in the details",
        WAIT,
        &format!(
            "(document.getElementById('details')?.textContent ?? '').includes('Worker version') && \
             document.getElementById('details').textContent.includes({})",
            serde_json::to_string(&version).unwrap()
        ),
    );
    screenshot(&mut b, &db, "details-1280");
    assert_eq!(b.eval("window.__sameDocument === true"), Value::Bool(true));

    // Closing the details shows the history with the run completed.
    b.eval("location.hash = '#/'");
    b.wait_js(
        "the history row",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{id}\"] .status')?.textContent === 'COMPLETED'"
        ),
    );
    screenshot(&mut b, &db, "overview-1280");
}

#[test]
fn cancel_a_running_run_from_the_active_panel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-cancel");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let id = db.enqueue("demo-unknown-total", &["count=100000", "delay_ms=20"]);
    let card = format!("#active-list [data-run-id=\"{id}\"]");
    b.wait_js(
        "the run to appear running with an unknown-total progress text",
        WAIT,
        &format!(
            "/^Scanning \\([1-9][\\d,]* processed\\)$/.test(document.querySelector({})?.textContent)",
            js_str(&format!("{card} .progress-text"))
        ),
    );
    b.wait_js(
        "a rate computed from successive updates",
        WAIT,
        &format!(
            "/items\\/s$/.test(document.querySelector({})?.textContent)",
            js_str(&format!("{card} .rate"))
        ),
    );
    b.eval(&format!(
        "document.querySelector({}).click()",
        js_str(&format!("{card} .btn-cancel"))
    ));
    db.wait_status(id, "CANCELLED", WAIT);
    b.wait_js(
        "the run to leave the active panel",
        WAIT,
        &format!("document.querySelector({}) === null", js_str(&card)),
    );
    b.wait_js(
        "the history to show CANCELLED",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{id}\"] .status')?.textContent === 'CANCELLED'"
        ),
    );
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    b.wait_js(
        "the details to show CANCELLED with a Re-run button",
        WAIT,
        "document.querySelector('#details-status .status')?.textContent === 'CANCELLED' && \
         document.querySelector('#details-summary .btn-rerun') !== null",
    );
}

#[test]
fn log_line_with_markup_is_shown_as_text() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-xss");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let id = db.enqueue("demo-known-total", &["count=3", "delay_ms=0"]);
    db.wait_status(id, "COMPLETED", WAIT);
    let evil = "<img src=x onerror=alert(1)>";
    db.conn()
        .execute(
            "INSERT INTO JobLog (jobRunId, level, stage, message, context, timestamp) \
             VALUES (?1, 'error', ?2, ?2, json_object('html', ?2), \
                     strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            rusqlite::params![id, evil],
        )
        .expect("insert log line");
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    b.wait_js(
        "the markup line shown as text",
        WAIT,
        &format!(
            "[...document.querySelectorAll('.log-viewer .log-msg')].some(m => m.textContent === {})",
            js_str(evil)
        ),
    );
    assert_eq!(
        b.eval("document.querySelectorAll('img').length"),
        Value::from(0)
    );
    let stage = text_of(&mut b, ".log-line.level-error .log-stage");
    assert_eq!(stage, evil);
    assert!(text_of(&mut b, ".log-line.level-error .log-context").contains(evil));
}

#[test]
fn phone_width_has_no_horizontal_overflow() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-phone");
    let (_serve, mut b) = open_page(&db, 390, 844);
    let ok = db.enqueue("demo-known-total", &["count=5", "delay_ms=0"]);
    let failed = db.enqueue("demo-multi-phase", &["count=5", "delay_ms=0", "fail_at=3"]);
    let long = db.enqueue("demo-known-total", &["count=100000", "delay_ms=50"]);
    db.wait_status(ok, "COMPLETED", WAIT);
    db.wait_status(failed, "FAILED", WAIT);
    db.wait_status(long, "RUNNING", WAIT);
    b.wait_js(
        "history rows and the error group",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{failed}\"].row-failed') !== null && \
             document.querySelector('#history-rows tr[data-run-id=\"{long}\"]') !== null && \
             document.querySelector('#errors-list .error-group') !== null"
        ),
    );
    let no_overflow = "document.documentElement.scrollWidth <= window.innerWidth && \
                       document.body.scrollWidth <= window.innerWidth";
    assert_eq!(b.eval("window.innerWidth"), Value::from(390));
    wait_for("layout to settle", WAIT, || {
        b.eval(no_overflow) == Value::Bool(true)
    });
    screenshot(&mut b, &db, "overview-390");

    // A date range in the future matches nothing; clearing it brings rows back.
    b.eval(
        "{ const f = document.getElementById('history-filters'); f.elements.since.value = '2099-01-01T00:00'; \
         f.elements.since.dispatchEvent(new Event('change', {bubbles: true})) }",
    );
    b.wait_js(
        "an empty history for a future date range",
        WAIT,
        "document.querySelector('#history-rows td.empty')?.textContent === 'No runs match these filters.'",
    );
    // Filters changed while a request is in flight: the answer for the
    // old filters arrives last (held back here) and must not replace the
    // rows of the new ones.
    b.eval(
        "{ const real = window.realFetch = window.fetch; window.heldBack = 'no'; \
           window.fetch = (url, init) => { \
             const p = real(url, init); \
             if (!String(url).startsWith('/api/jobs?') || String(url).includes('status=')) return p; \
             window.heldBack = 'waiting'; \
             return p.then((r) => new Promise((ok) => setTimeout(() => { \
               ok(r); setTimeout(() => { window.heldBack = 'answered'; }, 50); }, 500))); }; }",
    );
    b.eval(
        "{ const f = document.getElementById('history-filters'); f.elements.since.value = ''; \
         f.elements.since.dispatchEvent(new Event('change', {bubbles: true})) }",
    );

    // The status filter keeps only failed runs.
    b.eval(
        "{ const f = document.getElementById('history-filters'); f.elements.status.value = 'FAILED'; \
         f.elements.status.dispatchEvent(new Event('change', {bubbles: true})) }",
    );
    let only_failed = format!(
        "(() => {{ const rows = [...document.querySelectorAll('#history-rows tr')]; \
         return rows.length === 1 && rows[0].dataset.runId === '{failed}'; }})()"
    );
    b.wait_js("only the failed run in the history", WAIT, &only_failed);
    b.wait_js(
        "the held-back answer for the old filters",
        WAIT,
        "window.heldBack === 'answered'",
    );
    assert_eq!(
        b.eval(&only_failed),
        Value::Bool(true),
        "a late answer for the old filters replaced the rows"
    );
    b.eval("window.fetch = window.realFetch");

    b.eval(&format!("location.hash = '#/runs/{failed}'"));
    b.wait_js(
        "the failed run's error and outcome chart",
        WAIT,
        "document.querySelector('#details-body .error-message')?.textContent.includes('could not be processed') && \
         document.querySelector('.outcome-bad .outcome-key') !== null",
    );
    let dialog_fits = "(() => { const d = document.getElementById('details'); \
                       const r = d.getBoundingClientRect(); \
                       return r.left >= 0 && r.right <= window.innerWidth && d.scrollWidth <= d.clientWidth; })()";
    assert_eq!(b.eval(dialog_fits), Value::Bool(true));
    assert_eq!(b.eval(no_overflow), Value::Bool(true));
    screenshot(&mut b, &db, "details-390");
}

#[test]
fn worker_stop_and_start_buttons() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-worker");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    b.wait_js(
        "a ticking heartbeat age",
        WAIT,
        "/ago$/.test(document.getElementById('worker-heartbeat')?.textContent)",
    );
    // The answer to the Stop request is held back until the WebSocket has
    // told of the stop, as happens when the worker stops faster than the
    // answer travels: the older answer must not undo the newer state.
    b.eval(
        "(() => { const orig = window.fetch; window.fetch = async (url, opts) => { \
           const res = await orig(url, opts); \
           if (String(url).includes('/api/worker/stop')) { \
             const until = Date.now() + 5000; \
             while (Date.now() < until && !['STOPPING', 'STOPPED', 'NO WORKER'] \
                 .includes(document.getElementById('worker-state')?.textContent)) { \
               await new Promise((r) => setTimeout(r, 20)); } \
             window.__stopAnswered = true; } \
           return res; }; return true; })()",
    );
    b.eval("document.getElementById('worker-stop').click()");
    b.wait_js("the answer to Stop", WAIT, "window.__stopAnswered === true");
    b.wait_js(
        "the worker to stop",
        WAIT,
        "['STOPPED', 'NO WORKER'].includes(document.getElementById('worker-state')?.textContent) && \
         !document.getElementById('worker-start').disabled",
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM Worker WHERE state IN ('STARTING', 'RUNNING', 'STOPPING')"),
        "0"
    );
    b.eval("document.getElementById('worker-start').click()");
    b.wait_js(
        "the worker to run again",
        WAIT,
        "document.getElementById('worker-state')?.textContent === 'RUNNING' && \
         document.getElementById('worker-stop').disabled === false",
    );
}

#[test]
fn stale_worker_and_stalled_run_cleanup() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-stalled");
    let serve = Serve::start_with(&db, &["--no-worker"]);
    let mut worker = db.spawn_worker(&[]);
    // Not safe to retry, so the clean-up marks it FAILED (instead of queueing it again).
    let id = db.enqueue("demo-multi-phase", &["count=100000", "delay_ms=50"]);
    db.wait_status(id, "RUNNING", WAIT);
    let mut b = load_page(&db, &serve, 1280, 900);
    b.eval("window.__sameDocument = true");

    // The worker dies without a word: the page shows it STALE, then the run
    // is offered for clean-up.
    worker.signal("KILL");
    worker.wait_exit(WAIT);
    b.wait_js(
        "the worker to show as stale or dead",
        WAIT,
        "['STALE', 'DEAD'].includes(document.getElementById('worker-state')?.textContent)",
    );
    b.eval("document.getElementById('stalled-open').click()");
    let listed = b.poll_js(
        WAIT,
        &format!(
            "document.querySelector('#stalled-body .stalled-list a[href=\"#/runs/{id}\"]') !== null"
        ),
    );
    if listed.is_err() {
        // Maintenance may already have failed the run by itself.
        assert_eq!(
            db.status_of(id),
            "FAILED",
            "run {id} neither listed nor failed"
        );
        return;
    }
    assert_eq!(
        db.status_of(id),
        "RUNNING",
        "nothing changes before confirming"
    );
    assert_eq!(
        text_of(&mut b, "#stalled-body .stalled-list li .status + .status"),
        "FAILED",
        "the dialog says what the run will become"
    );
    b.eval("document.getElementById('stalled-confirm').click()");
    db.wait_status(id, "FAILED", WAIT);
    b.wait_js(
        "the history to show the run FAILED",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{id}\"].row-failed .status')?.textContent === 'FAILED'"
        ),
    );
    assert_eq!(b.eval("window.__sameDocument === true"), Value::Bool(true));
}
