//! Browser tests of values an operator must be able to trust: every time
//! in one zone that the page names and lets them switch (remembered), a
//! running run's duration that follows the clock, and plain wording
//! (queued runs, counts, zero tiles, code in help texts).

mod common;

use common::TestDb;
use common::page::{
    SERIAL, Serve, WAIT, chromium_available, js_str, load_page, open_page, screenshot,
};
use serde_json::json;

/// Whether every `<time>` under `selector` shows its instant in the zone
/// `offset_hours` east of UTC, formatted "YYYY-MM-DD HH:MM:SS", with the
/// UTC instant on hover.
fn times_in_zone(selector: &str, offset_hours: i64) -> String {
    format!(
        "(() => {{ const ts = [...document.querySelectorAll({})]; return ts.length > 0 && \
         ts.every(t => t.title === new Date(Date.parse(t.dateTime)).toISOString() + ' (UTC)' && \
         t.textContent === new Date(Date.parse(t.dateTime) + {} * 3600e3).toISOString() \
           .slice(0, 19).replace('T', ' ')); }})()",
        js_str(selector),
        offset_hours
    )
}

#[test]
fn every_time_follows_one_named_zone_and_the_switch_is_remembered() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-zone");
    let (serve, mut b) = open_page(&db, 1280, 900);
    let id = db.enqueue("demo-known-total", &["count=2", "delay_ms=0"]);
    db.wait_status(id, "COMPLETED", WAIT);
    // A zone without daylight saving, 9 hours east of UTC.
    b.page(
        "Emulation.setTimezoneOverride",
        json!({"timezoneId": "Asia/Tokyo"}),
    );
    b.navigate(&serve.url);
    b.wait_js(
        "the switch to name the browser's zone",
        WAIT,
        "document.getElementById('tz-toggle')?.textContent === 'Times: Asia/Tokyo'",
    );
    let row_times = format!("#history-rows tr[data-run-id=\"{id}\"] time");
    b.wait_js(
        "the history's times in Tokyo time",
        WAIT,
        &times_in_zone(&row_times, 9),
    );

    b.eval("document.getElementById('tz-toggle').click()");
    b.wait_js(
        "the switch to say UTC",
        WAIT,
        "document.getElementById('tz-toggle').textContent === 'Times: UTC' && \
         document.getElementById('tz-toggle').getAttribute('aria-pressed') === 'true'",
    );
    b.wait_js(
        "the history's times in UTC",
        WAIT,
        &times_in_zone(&row_times, 0),
    );

    // Remembered across a reload, and the details follow it too, the log
    // lines' clock included.
    b.navigate(&serve.url);
    b.wait_js(
        "UTC after a reload",
        WAIT,
        &format!(
            "document.getElementById('tz-toggle')?.textContent === 'Times: UTC' && {}",
            times_in_zone(&row_times, 0)
        ),
    );
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    b.wait_js(
        "the details' times in UTC",
        WAIT,
        &times_in_zone("#details-timings time", 0),
    );
    b.wait_js(
        "log lines stamped in UTC",
        WAIT,
        "(() => { const t = document.querySelector('#details time.log-time'); return t !== null && \
         t.textContent === new Date(Date.parse(t.dateTime)).toISOString().slice(11, 23); })()",
    );
}

#[test]
fn a_running_runs_duration_and_stage_time_follow_the_clock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-tick");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let id = db.enqueue("demo-known-total", &["count=100000", "delay_ms=20"]);
    db.wait_status(id, "RUNNING", WAIT);
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    // The Duration shown, in seconds, against the clock: it must keep up
    // (within 1.5 s) once the run has gone on for 3 s after the details
    // were drawn.
    let shown = "(() => { const dd = [...document.querySelectorAll('#details-timings .kv')] \
                 .find(kv => kv.querySelector('dt').textContent === 'Duration')?.querySelector('dd'); \
                 const m = /^([\\d.]+)s$/.exec(dd?.textContent ?? ''); return m ? Number(m[1]) : null; })()";
    b.wait_js(
        "the details with a duration",
        WAIT,
        &format!("{shown} !== null"),
    );
    let started: String = db.scalar(&format!("SELECT startedAt FROM JobRun WHERE id = {id}"));
    let drawn = b.eval(shown).as_f64().unwrap();
    let keeps_up = format!(
        "(() => {{ const s = {shown}; const real = (Date.now() - Date.parse({})) / 1000; \
         return s !== null && s >= {drawn} + 3 && Math.abs(real - s) < 1.5; }})()",
        js_str(&started)
    );
    b.wait_js("the duration to follow the clock", WAIT, &keeps_up);
    b.wait_js(
        "the current stage's time so far to grow too",
        WAIT,
        &format!(
            "(() => {{ const t = document.querySelector('#details-stages .timeline-item.current .muted')?.textContent ?? ''; \
             const m = /· ([\\d.]+)s so far$/.exec(t); return m !== null && Number(m[1]) >= {drawn} + 3; }})()"
        ),
    );
}

#[test]
fn queued_runs_counts_zero_tiles_and_help_texts_read_plainly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-plain");
    let serve = Serve::start_with(&db, &["--no-worker"]);
    let mut worker = db.spawn_worker(&[]);
    let one = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(one, "COMPLETED", WAIT);
    let mut b = load_page(&db, &serve, 1280, 900);
    // No worker: the next run stays queued.
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(WAIT), Some(0));
    let queued = db.enqueue("demo-known-total", &["count=5"]);

    b.wait_js(
        "the queued run to read Queued",
        WAIT,
        &format!(
            "document.querySelector('#active-list [data-run-id=\"{queued}\"] .progress-text')?.textContent === 'Queued'"
        ),
    );
    b.wait_js(
        "one item, not one items",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{one}\"] .col-summary')?.textContent === '1 item'"
        ),
    );
    // No run failed: the Failed tile is not in the alarm colour.
    let failed = b.eval(
        "(() => { const v = document.querySelector('#stat-failed .tile-value'); \
         const m = document.querySelector('.tile-label'); \
         return v && v.textContent === '0' && getComputedStyle(v).color === getComputedStyle(m).color; })()",
    );
    assert_eq!(failed, json!(true));

    // Help written with `backticks` shows code, not the backticks.
    b.eval("document.getElementById('newjob-open').click()");
    b.eval(
        "{ const s = document.getElementById('newjob-type'); s.value = 'demo-multi-phase'; \
         s.dispatchEvent(new Event('change')) }",
    );
    b.wait_js(
        "the fail_mode help with fail_at as code",
        WAIT,
        "(() => { const help = document.querySelector('[data-param=\"fail_mode\"] .help'); \
         return help !== null && help.querySelector('code')?.textContent === 'fail_at' && \
         !help.textContent.includes('`'); })()",
    );
    assert_eq!(db.status_of(queued), "QUEUED");
}

/// Presses one key as a person would (through the browser's input).
fn press(b: &mut common::cdp::Browser, key: &str) {
    for kind in ["keyDown", "keyUp"] {
        let mut ev = json!({"type": kind, "key": key});
        if kind == "keyDown" && key.chars().count() == 1 {
            ev["text"] = json!(key);
        }
        if key == "Enter" {
            ev["code"] = json!("Enter");
            ev["windowsVirtualKeyCode"] = json!(13);
        }
        b.page("Input.dispatchKeyEvent", ev);
    }
}

#[test]
fn history_filters_live_in_the_url_and_the_keyboard_walks_the_rows() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-history");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let failed = db.enqueue("demo-multi-phase", &["count=3", "delay_ms=0", "fail_at=1"]);
    db.wait_status(failed, "FAILED", WAIT);
    let done = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(done, "COMPLETED", WAIT);
    let cancelled = db.enqueue("demo-known-total", &["count=100000", "delay_ms=20"]);
    db.wait_status(cancelled, "RUNNING", WAIT);
    db.ok(&["cancel", &cancelled.to_string()]);
    db.wait_status(cancelled, "CANCELLED", WAIT);

    // Two statuses at once and a larger page.
    b.eval(
        "{ for (const v of ['FAILED', 'CANCELLED']) { \
             const box = document.querySelector(`#history-filters input[name=status][value=${v}]`); \
             box.checked = true; box.dispatchEvent(new Event('change', {bubbles: true})); } \
           const size = document.getElementById('history-filters').elements.size; \
           size.value = '50'; size.dispatchEvent(new Event('change', {bubbles: true})); }",
    );
    let only_two = format!(
        "(() => {{ const ids = [...document.querySelectorAll('#history-rows tr[data-run-id]')] \
         .map(r => r.dataset.runId); return ids.join(',') === '{cancelled},{failed}'; }})()"
    );
    b.wait_js("the failed and the cancelled run only", WAIT, &only_two);
    screenshot(&mut b, &db, "history-filters");
    let search = b.eval("location.search");
    assert_eq!(search, json!("?status=FAILED%2CCANCELLED&size=50"));

    // A reload (or the link sent to a colleague) shows the same.
    let href = b.eval("location.href").as_str().unwrap().to_string();
    b.navigate(&href);
    b.wait_js(
        "the filters restored from the URL",
        WAIT,
        &format!(
            "(() => {{ const f = document.getElementById('history-filters'); \
             const on = [...f.querySelectorAll('input[name=status]:checked')].map(c => c.value).join(','); \
             return on === 'FAILED,CANCELLED' && f.elements.size.value === '50' && {only_two}; }})()"
        ),
    );

    // j and k move through the rows, Enter opens one, / searches.
    press(&mut b, "j");
    press(&mut b, "j");
    press(&mut b, "k");
    b.wait_js(
        "the first row selected",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr.selected')?.dataset.runId === '{cancelled}'"
        ),
    );
    press(&mut b, "Enter");
    b.wait_js(
        "its details open",
        WAIT,
        &format!(
            "location.hash === '#/runs/{cancelled}' && document.getElementById('details').open"
        ),
    );
    b.eval("location.hash = '#/'");
    b.wait_js(
        "the details closed",
        WAIT,
        "!document.getElementById('details').open",
    );
    press(&mut b, "/");
    b.wait_js(
        "the search field focused",
        WAIT,
        "document.activeElement === document.getElementById('history-filters').elements.q",
    );
}

#[test]
fn stop_names_the_runs_it_interrupts_and_counts_down_their_drain() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-stop");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let id = db.enqueue("demo-known-total", &["count=400", "delay_ms=20"]);
    let card = format!("#active-list [data-run-id=\"{id}\"] .progress-text");
    b.wait_js(
        "the run running on the page",
        WAIT,
        &format!(
            "/^Processing items/.test(document.querySelector({})?.textContent)",
            js_str(&card)
        ),
    );
    b.eval("document.getElementById('worker-stop').click()");
    b.wait_js(
        "a confirmation naming the run and its drain",
        WAIT,
        &format!(
            "document.getElementById('confirm').open && \
             document.getElementById('confirm-title').textContent === 'Stop the worker?' && \
             document.getElementById('confirm-message').textContent === \
               'The worker takes no new runs. The running run (demo-known-total #{id}) gets 1m 00s to finish; then it is cancelled.'"
        ),
    );
    b.eval("document.getElementById('confirm-no').click()");
    b.wait_js(
        "the confirmation gone",
        WAIT,
        "!document.getElementById('confirm').open",
    );
    assert_eq!(
        db.scalar("SELECT stopRequestedAt IS NULL FROM Worker WHERE state = 'RUNNING'"),
        "1",
        "Keep it running must not stop the worker"
    );
    b.eval("document.getElementById('worker-stop').click()");
    b.wait_js(
        "the confirmation",
        WAIT,
        "document.getElementById('confirm').open",
    );
    b.eval("document.getElementById('confirm-yes').click()");
    // While it drains, the time left counts down with the clock.
    let left = "(() => { const m = /^Stopping: running jobs have ([\\d.]+)s left to finish/ \
                .exec(document.getElementById('worker-hint')?.textContent ?? ''); \
                return m ? Number(m[1]) : null; })()";
    b.wait_js(
        "the drain countdown",
        WAIT,
        &format!("(() => {{ const s = {left}; return s !== null && s <= 60; }})()"),
    );
    let first = b.eval(left).as_f64().unwrap();
    b.wait_js(
        "the countdown to move",
        WAIT,
        &format!("(() => {{ const s = {left}; return s !== null && s < {first}; }})()"),
    );
    db.wait_status(id, "COMPLETED", WAIT);
}

#[test]
fn a_failure_group_links_to_its_runs_in_the_history() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-groups");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let ok = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    let failed: Vec<i64> = ["1", "2"]
        .iter()
        .map(|n| {
            db.enqueue(
                "demo-multi-phase",
                &["count=5", "delay_ms=0", &format!("fail_at={n}")],
            )
        })
        .collect();
    for id in &failed {
        db.wait_status(*id, "FAILED", WAIT);
    }
    db.wait_status(ok, "COMPLETED", WAIT);
    b.wait_js(
        "one group of two failures",
        WAIT,
        "(() => { const g = document.querySelectorAll('#errors-list .error-group'); \
         return g.length === 1 && g[0].querySelector('.error-count').textContent === '2×'; })()",
    );
    b.eval("document.querySelector('#errors-list .error-history').click()");
    b.wait_js(
        "the history showing just the group's runs",
        WAIT,
        &format!(
            "(() => {{ const ids = [...document.querySelectorAll('#history-rows tr[data-run-id]')] \
             .map(r => r.dataset.runId).join(','); \
             return ids === '{},{}' && document.getElementById('history-filters').elements.q.value === 'record'; }})()",
            failed[1], failed[0]
        ),
    );
}
