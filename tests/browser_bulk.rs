//! Bulk re-run from the history panel, in real headless Chromium (skipped
//! where Chromium is missing): with the Failed filter on, "Re-run all 3
//! matching" asks with the count, re-runs the three failed runs, says so in
//! a toast, and the history reloads; and a bulk delete of 20,000 runs shows
//! its progress while the server carries it out, then the final count.

mod common;

use common::page::{SERIAL, WAIT, open_page, screenshot, text_of};
use common::{TestDb, wait_for};

#[test]
fn three_failed_runs_are_rerun_from_the_history_filter() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-bulk");
    db.ok(&["migrate"]);
    db.conn()
        .execute_batch(
            "INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
             error, updatedAt) VALUES \
             ('demo-known-total', 'FAILED', '{\"count\": 1, \"delay_ms\": 0}', '2026-12-01T10:00:00.000Z', \
              '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', 'boom', '2026-12-01T10:00:01.000Z'), \
             ('demo-known-total', 'FAILED', '{\"count\": 1, \"delay_ms\": 0}', '2026-12-01T10:00:00.000Z', \
              '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', 'boom', '2026-12-01T10:00:01.000Z'), \
             ('demo-known-total', 'FAILED', '{\"count\": 1, \"delay_ms\": 0}', '2026-12-01T10:00:00.000Z', \
              '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', 'boom', '2026-12-01T10:00:01.000Z'), \
             ('demo-known-total', 'COMPLETED', '{}', '2026-12-01T10:00:00.000Z', \
              '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', NULL, '2026-12-01T10:00:01.000Z');",
        )
        .expect("seed runs");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    // No filter: no bulk actions.
    assert_eq!(
        b.eval("document.getElementById('history-bulk').hidden"),
        true
    );
    b.eval(
        "(() => { const box = document.querySelector('#history-filters input[value=\"FAILED\"]'); \
         box.checked = true; box.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    b.wait_js(
        "the bulk re-run button with the count",
        WAIT,
        "(() => { const x = document.getElementById('bulk-rerun'); \
         return !x.hidden && x.textContent === 'Re-run all 3 matching'; })()",
    );
    // Each button's count is its own dry run: wait for this one too.
    b.wait_js(
        "the bulk delete button with the count",
        WAIT,
        "document.getElementById('bulk-delete').textContent === 'Delete all 3'",
    );
    assert_eq!(
        b.eval("document.getElementById('bulk-cancel').hidden"),
        true
    );
    b.eval("document.getElementById('history-panel').scrollIntoView()");
    screenshot(&mut b, &db, "bulk-buttons");
    b.eval("document.getElementById('bulk-rerun').click()");
    b.wait_js(
        "the confirmation",
        WAIT,
        "document.getElementById('confirm').open",
    );
    assert_eq!(text_of(&mut b, "#confirm-title"), "Re-run all 3 runs?");
    assert!(text_of(&mut b, "#confirm-message").starts_with("3 runs that failed"));
    screenshot(&mut b, &db, "bulk-confirm");
    assert_eq!(
        db.scalar("SELECT count(*) FROM JobRun"),
        "4",
        "nothing before the yes"
    );
    b.eval("document.getElementById('confirm-yes').click()");
    b.wait_js(
        "the result toast",
        WAIT,
        "[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes('3 of 3 matching runs re-run'))",
    );
    assert_eq!(
        db.scalar(
            "SELECT group_concat(rerunOfId) FROM (SELECT rerunOfId FROM JobRun \
             WHERE triggeredBy = 'rerun' ORDER BY rerunOfId)"
        ),
        "1,2,3"
    );
    // The history reloads: the three have their re-runs, so nothing is left to re-run.
    b.wait_js(
        "the re-run button to go",
        WAIT,
        "document.getElementById('bulk-rerun').hidden",
    );
    wait_for("the re-runs to complete", WAIT, || {
        db.scalar(
            "SELECT count(*) FROM JobRun WHERE rerunOfId IS NOT NULL AND status = 'COMPLETED'",
        ) == "3"
    });
    assert_eq!(
        db.scalar("SELECT count(*) FROM Audit WHERE action = 'runs.bulk-rerun'"),
        "1"
    );
}

/// A bulk delete of 20,000 runs from the page: the server answers at once
/// and the page shows the action's progress while the server carries it
/// out, then the final count.
#[test]
fn a_bulk_delete_of_many_runs_shows_its_progress_then_the_count() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-bulk-progress");
    db.ok(&["migrate"]);
    db.conn()
        .execute_batch(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20000) \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
             updatedAt) SELECT 'demo-known-total', 'COMPLETED', '{}', '2026-12-01T10:00:00.000Z', \
             '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:01.000Z', '2026-12-01T10:00:01.000Z' \
             FROM k;",
        )
        .expect("seed runs");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    b.eval(
        "(() => { const box = document.querySelector('#history-filters input[value=\"COMPLETED\"]'); \
         box.checked = true; box.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    b.wait_js(
        "the bulk delete button with the count",
        WAIT,
        "document.getElementById('bulk-delete').textContent === 'Delete all 20,000'",
    );
    // Every text the progress line shows, however briefly.
    b.eval(
        "(() => { const line = document.getElementById('bulk-progress'); window.progressSeen = []; \
         new MutationObserver(() => window.progressSeen.push(line.hidden ? '' : line.textContent)) \
         .observe(line, { childList: true, characterData: true, subtree: true, attributes: true }); })()",
    );
    b.eval("document.getElementById('bulk-delete').click()");
    b.wait_js(
        "the confirmation",
        WAIT,
        "document.getElementById('confirm').open",
    );
    b.eval("document.getElementById('confirm-yes').click()");
    b.wait_js(
        "the result toast",
        WAIT,
        "[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent.includes('20,000 of 20,000 matching runs deleted'))",
    );
    assert_eq!(
        b.eval("window.progressSeen.some(t => /^Deleting: [0-9,]+ of 20,000 runs$/.test(t))"),
        true,
        "progress shown: {}",
        b.eval("JSON.stringify(window.progressSeen)")
    );
    assert_eq!(
        b.eval("document.getElementById('bulk-progress').hidden"),
        true
    );
    assert_eq!(db.scalar("SELECT count(*) FROM JobRun"), "0");
    assert_eq!(
        db.scalar("SELECT status || ' ' || done FROM BulkAction"),
        "DONE 20000"
    );
}
