//! The history's total for its filter in headless Chromium (skipped where
//! it is missing): "N matching" and "Page 1 of 3" for the filters in use,
//! following the status, type and search filters and the page size, which
//! is kept in the URL across a reload.

mod common;

use common::TestDb;
use common::page::{SERIAL, Serve, WAIT, screenshot, text_of};

fn seed(db: &TestDb, name: &str, status: &str, n: usize) {
    db.conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
             updatedAt) SELECT ?2, ?3, '{}', '2026-12-01T10:00:00.000Z', \
             '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', '2026-12-01T10:00:01.000Z' FROM k",
            rusqlite::params![n as i64, name, status],
        )
        .expect("seed runs");
}

fn shows(b: &mut common::cdp::Browser, what: &str, count: &str, page: &str) {
    b.wait_js(
        what,
        WAIT,
        &format!(
            "document.getElementById('history-count').textContent === '{count}' && \
             document.getElementById('history-page').textContent === '{page}'"
        ),
    );
}

#[test]
fn the_history_shows_its_filters_total_and_page_count() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-history-count");
    db.ok(&["migrate"]);
    seed(&db, "demo-known-total", "COMPLETED", 30);
    seed(&db, "demo-multi-phase", "FAILED", 20);
    seed(&db, "demo-unknown-total", "CANCELLED", 10);
    let serve = Serve::start_with(&db, &["--no-worker"]);
    let mut b = load_page_no_worker(&db, &serve);
    shows(
        &mut b,
        "the total of every run",
        "60 matching",
        "Page 1 of 3",
    );
    // 50 a page: two pages, and the choice is in the URL.
    b.eval(
        "(() => { const s = document.querySelector('#history-filters select[name=size]'); \
         s.value = '50'; s.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    shows(&mut b, "two pages of 50", "60 matching", "Page 1 of 2");
    assert!(
        b.eval("location.search")
            .as_str()
            .unwrap_or("")
            .contains("size=50")
    );
    b.eval("document.getElementById('history-next').click()");
    shows(&mut b, "the second page", "60 matching", "Page 2 of 2");
    assert_eq!(
        b.eval("document.querySelectorAll('#history-rows tr[data-run-id]').length"),
        10
    );
    // A status: from the counters.
    b.eval(
        "(() => { const x = document.querySelector('#history-filters input[value=FAILED]'); \
         x.checked = true; x.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    shows(
        &mut b,
        "the failed runs' total",
        "20 matching",
        "Page 1 of 1",
    );
    // A search on top: counted.
    b.eval(
        "(() => { const q = document.querySelector('#history-filters input[name=q]'); \
         q.value = 'known'; q.dispatchEvent(new Event('change', { bubbles: true })); \
         const x = document.querySelector('#history-filters input[value=FAILED]'); \
         x.checked = false; x.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    // 'known' matches demo-known-total and demo-unknown-total.
    shows(&mut b, "the search's total", "40 matching", "Page 1 of 1");
    b.eval("document.getElementById('history-panel').scrollIntoView()");
    screenshot(&mut b, &db, "history-count-1400");
    // A reload keeps the filters and the page size.
    b.reload();
    shows(
        &mut b,
        "the same total after a reload",
        "40 matching",
        "Page 1 of 1",
    );
    assert_eq!(
        text_of(&mut b, "#history-filters select[name=size] option:checked"),
        "50 per page"
    );
    // A new matching run: the row comes live, and the counted total follows
    // (within the page's ten seconds between counts of this kind).
    let id = db.enqueue("demo-known-total", &[]);
    b.wait_js(
        "the new run's row",
        WAIT,
        &format!("document.querySelector('#history-rows tr[data-run-id=\"{id}\"]') !== null"),
    );
    shows(
        &mut b,
        "the total with the new run",
        "41 matching",
        "Page 1 of 1",
    );
}

/// Loads the page of a server without a worker (no RUNNING worker to wait
/// for): waits for the Live badge and the first history page.
fn load_page_no_worker(db: &TestDb, serve: &Serve) -> common::cdp::Browser {
    let mut b = common::cdp::Browser::launch(&db.dir, 1400, 900);
    b.navigate(&serve.url);
    b.wait_js(
        "the page with its history",
        WAIT,
        "location.pathname === '/admin/jobs' && document.querySelector('#history-rows tr[data-run-id]') !== null",
    );
    b
}
