//! The Audit panel in headless Chromium (skipped where it is missing): the
//! actions taken in the test, from the CLI and from the page, listed newest
//! first with where they came from and who took them; the source filter;
//! a filter the server refuses explained in place; and the run it names
//! linked to the run's details; and a toast that lets clicks through to the
//! control under it.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, open_page, screenshot, text_of};

#[test]
fn the_audit_panel_lists_filters_and_links_the_actions_taken() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-audit");
    let (_serve, mut b) = open_page(&db, 1400, 900);
    let out = db
        .cmd()
        .env("USER", "alice")
        .args([
            "enqueue",
            "demo-known-total",
            "-p",
            "count=1",
            "-p",
            "delay_ms=0",
        ])
        .output()
        .expect("run jobmgr");
    assert!(out.status.success(), "{out:?}");
    let first: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the new id");
    db.wait_status(first, "COMPLETED", WAIT);
    // A re-run from the page's history.
    b.wait_js(
        "the run's Re-run button",
        WAIT,
        &format!("document.querySelector('#history-rows tr[data-run-id=\"{first}\"] .btn-rerun') !== null"),
    );
    b.eval(&format!(
        "document.querySelector('#history-rows tr[data-run-id=\"{first}\"] .btn-rerun').click()"
    ));
    let rerun_row = "#audit-rows tr:first-child";
    b.wait_js(
        "the page's re-run at the top of the audit",
        WAIT,
        &format!("document.querySelector('{rerun_row} .col-action')?.textContent === 'run.rerun'"),
    );
    let second = db.scalar("SELECT max(id) FROM JobRun");
    assert_eq!(
        text_of(&mut b, &format!("{rerun_row} .col-target")),
        format!("run {first}")
    );
    assert_eq!(
        text_of(&mut b, &format!("{rerun_row} .col-detail")),
        format!("new run {second}")
    );
    assert!(text_of(&mut b, &format!("{rerun_row} .col-from")).starts_with("Page 127.0.0.1:"));
    let rows = b.eval(
        "[...document.querySelectorAll('#audit-rows tr')].map(tr => \
         tr.querySelector('.col-action').textContent + ' ' + tr.querySelector('.badge').textContent + \
         ' ' + tr.querySelector('.col-user').textContent).join(' | ')",
    );
    assert_eq!(rows, "run.rerun Page  | run.enqueue CLI alice");
    // The history shows the re-run too, with the count.
    b.wait_js(
        "the re-run in the history",
        WAIT,
        "document.querySelectorAll('#history-rows tr[data-run-id]').length === 2 && \
         document.getElementById('history-count').textContent === '2 matching'",
    );
    // The re-run opened its details; back to the page.
    b.eval("location.hash = '#/'");
    b.wait_js(
        "the details to close",
        WAIT,
        "!document.getElementById('details').open",
    );
    b.eval("document.getElementById('audit-panel').scrollIntoView()");
    screenshot(&mut b, &db, "audit-1400");
    // A toast does not take the clicks of what is under it (one is added
    // here: the re-run's may have gone by now).
    let under = b.eval(
        "(() => { const t = document.createElement('div'); t.className = 'toast toast-ok'; \
         const s = document.createElement('span'); s.textContent = 'a toast over the pager'; t.append(s); \
         document.getElementById('toasts').append(t); \
         const r = s.getBoundingClientRect(); \
         const el = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
         const hit = el && el.closest('#toasts') ? 'the toast' : 'the page'; t.remove(); return hit; })()",
    );
    assert_eq!(under, "the page");

    // Only the CLI's.
    b.eval(
        "(() => { const s = document.querySelector('#audit-filters select[name=source]'); \
         s.value = 'cli'; s.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    b.wait_js(
        "only the CLI's action",
        WAIT,
        "document.querySelectorAll('#audit-rows tr').length === 1 && \
         document.querySelector('#audit-rows .col-action')?.textContent === 'run.enqueue'",
    );
    // A filter the server refuses says why, under the form.
    b.eval(
        "(() => { const i = document.querySelector('#audit-filters input[name=action]'); \
         i.value = 'Run Cancel'; i.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    b.wait_js(
        "the refusal in place",
        WAIT,
        "document.getElementById('audit-error').textContent.startsWith('action must be an action name')",
    );
    screenshot(&mut b, &db, "audit-refused-1400");
    b.eval("document.getElementById('audit-reset').click()");
    b.wait_js(
        "both actions again, the refusal gone",
        WAIT,
        "document.querySelectorAll('#audit-rows tr').length === 2 && \
         document.getElementById('audit-error').textContent === ''",
    );
    // The run named in the detail opens its details.
    b.eval(&format!(
        "[...document.querySelectorAll('#audit-rows .col-detail a')].find(a => a.textContent === 'run {second}').click()"
    ));
    b.wait_js(
        "the re-run's details",
        WAIT,
        &format!("document.getElementById('details').open && location.hash === '#/runs/{second}'"),
    );
}
