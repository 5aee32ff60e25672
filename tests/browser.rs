//! Browser tests: `jobmgr serve` on a temporary database, driven through
//! real headless Chromium over the DevTools protocol. Each test has its own
//! database, server, port and browser.

mod common;

use std::time::Duration;

use common::page::{
    SERIAL, Serve, WAIT, chromium_available, js_str, load_page, open_page, screenshot, text_of,
};
use common::{TestDb, wait_for};
use serde_json::Value;

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
    // Cancel asks first, naming the run; "Keep it" leaves it running.
    let click_cancel = format!(
        "document.querySelector({}).click()",
        js_str(&format!("{card} .btn-cancel"))
    );
    b.eval(&click_cancel);
    b.wait_js(
        "a confirmation that names the run",
        WAIT,
        &format!(
            "document.getElementById('confirm').open && \
             document.getElementById('confirm-title').textContent === 'Cancel run #{id}?' && \
             document.getElementById('confirm-message').textContent.startsWith('demo-unknown-total #{id} is running (Scanning')"
        ),
    );
    b.eval("document.getElementById('confirm-no').click()");
    b.wait_js(
        "the confirmation gone",
        WAIT,
        "!document.getElementById('confirm').open",
    );
    assert_eq!(db.status_of(id), "RUNNING");
    assert_eq!(
        db.scalar(&format!(
            "SELECT cancelRequestedAt IS NULL FROM JobRun WHERE id = {id}"
        )),
        "1"
    );
    b.eval(&click_cancel);
    b.wait_js(
        "the confirmation again",
        WAIT,
        "document.getElementById('confirm').open",
    );
    b.eval("document.getElementById('confirm-yes').click()");
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
        "{ const box = document.querySelector('#history-filters input[name=status][value=FAILED]'); \
         box.checked = true; box.dispatchEvent(new Event('change', {bubbles: true})) }",
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
    b.wait_js(
        "Stop to ask first",
        WAIT,
        "document.getElementById('confirm').open && \
         document.getElementById('confirm-message').textContent.startsWith('No run is running')",
    );
    b.eval("document.getElementById('confirm-yes').click()");
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
    // A stopped worker serve supervised is not "started by hand".
    assert_eq!(
        b.eval("document.getElementById('worker-body').textContent.includes('started by hand')"),
        Value::Bool(false)
    );
    // The start is answered (202) before the new worker exists: until its
    // row arrives over the WebSocket, Start must not come back enabled.
    b.eval(
        "(() => { window.__startReenabled = false; \
           new MutationObserver(() => { \
             const b = document.getElementById('worker-start'); \
             if (b && !b.disabled) window.__startReenabled = true; \
           }).observe(document.body, { childList: true, subtree: true, attributes: true }); \
           return true; })()",
    );
    b.eval("document.getElementById('worker-start').click()");
    b.wait_js(
        "the worker to run again",
        WAIT,
        "document.getElementById('worker-state')?.textContent === 'RUNNING' && \
         document.getElementById('worker-stop').disabled === false",
    );
    assert_eq!(
        b.eval("window.__startReenabled"),
        Value::Bool(false),
        "Start was enabled again before the new worker showed up"
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
