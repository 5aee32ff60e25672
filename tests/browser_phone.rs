//! The page on a phone (390 px wide) in headless Chromium (skipped where
//! it is missing): no panel overflows sideways, the history keeps the run
//! id and duration, jumping to a section leaves its heading below the
//! sticky top bar, and the log in the run dialog is part of the dialog's
//! one scroll rather than a scroller inside it.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, open_page, screenshot};
use serde_json::Value;

const PANELS: [&str; 7] = [
    "worker-panel",
    "stats-panel",
    "active-panel",
    "schedules-panel",
    "errors-panel",
    "history-panel",
    "audit-panel",
];

#[test]
fn every_panel_fits_a_phone_and_the_history_keeps_id_and_duration() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-phone-fit");
    let (_serve, mut b) = open_page(&db, 390, 844);
    assert_eq!(b.eval("window.innerWidth"), Value::from(390));
    let done = db.enqueue("demo-multi-phase", &["count=200", "delay_ms=0"]);
    let failed = db.enqueue("demo-multi-phase", &["count=5", "delay_ms=0", "fail_at=3"]);
    db.wait_status(done, "COMPLETED", WAIT);
    db.wait_status(failed, "FAILED", WAIT);
    let long = db.enqueue("demo-unknown-total", &["count=100000", "delay_ms=50"]);
    db.wait_status(long, "RUNNING", WAIT);
    b.wait_js(
        "the runs in the history and the audit",
        WAIT,
        &format!(
            "document.querySelector('#history-rows tr[data-run-id=\"{long}\"]') !== null && \
             document.querySelectorAll('#audit-rows tr[data-audit-id]').length === 3"
        ),
    );
    for panel in PANELS {
        // A jump to the section: its heading is below the top bar.
        b.eval(&format!("location.hash = '#{panel}'"));
        b.wait_js(
            &format!("{panel}'s heading below the top bar"),
            WAIT,
            &format!(
                "(() => {{ const h = document.querySelector('#{panel} h2').getBoundingClientRect(); \
                 const bar = document.querySelector('.topbar').getBoundingClientRect(); \
                 return h.top >= bar.bottom && h.top < window.innerHeight; }})()"
            ),
        );
        assert_eq!(
            b.eval(
                "document.documentElement.scrollWidth <= 390 && document.body.scrollWidth <= 390"
            ),
            Value::Bool(true),
            "{panel} overflows sideways: {}",
            b.eval("document.documentElement.scrollWidth")
        );
        screenshot(&mut b, &db, &format!("phone-{panel}-390"));
    }
    // Each history row shows its run id and duration, inside the screen.
    let kept = b.eval(
        "[...document.querySelectorAll('#history-rows tr[data-run-id]')].every(tr => \
         ['.col-id', '.col-duration'].every(c => { const td = tr.querySelector(c); \
           const r = td.getBoundingClientRect(); \
           return getComputedStyle(td).display !== 'none' && r.width > 0 && r.right <= 390 && \
             td.textContent.trim() !== ''; }))",
    );
    assert_eq!(kept, Value::Bool(true), "a row lost its id or duration");
    db.ok(&["cancel", &long.to_string()]);
}

#[test]
fn the_run_dialogs_log_scrolls_with_the_dialog_on_a_phone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-phone-log");
    let (_serve, mut b) = open_page(&db, 390, 844);
    // 200 records: a warning every tenth, and milestones: dozens of lines.
    let id = db.enqueue("demo-multi-phase", &["count=200", "delay_ms=0"]);
    db.wait_status(id, "COMPLETED", WAIT);
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    b.wait_js(
        "the run's log lines",
        WAIT,
        "document.querySelectorAll('#details .log-line').length >= 20",
    );
    let log = "document.querySelector('#details .log-lines')";
    assert_eq!(
        b.eval(&format!(
            "(() => {{ const l = {log}; return l.scrollHeight <= l.clientHeight + 1 && \
             getComputedStyle(l).overflowY === 'visible'; }})()"
        )),
        Value::Bool(true),
        "the log scrolls inside the dialog: {}",
        b.eval(&format!(
            "(() => {{ const l = {log}; return `${{l.scrollHeight}} in ${{l.clientHeight}}`; }})()"
        ))
    );
    // The dialog is the one thing that scrolls, and only downwards.
    assert_eq!(
        b.eval(
            "(() => { const d = document.getElementById('details'); \
             return d.scrollHeight > d.clientHeight && d.scrollWidth <= d.clientWidth; })()"
        ),
        Value::Bool(true)
    );
    b.eval(&format!("{log}.scrollIntoView()"));
    screenshot(&mut b, &db, "phone-details-log-390");
}
