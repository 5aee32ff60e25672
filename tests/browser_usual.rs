//! In headless Chromium (skipped where it is missing): what is usual for a
//! job type, from runs made in the test. A RUNNING run that reports no
//! total shows "usually about 2 min; ~2 min left" on its card and in its
//! details; a finished run whose counters are far from its type's usual is
//! flagged in the history row and the details.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, open_page, screenshot, text_of};

/// Inserts `n` COMPLETED runs of `name`, each taking `ms` and reporting
/// `outcome` (JSON text).
fn seed_completed(db: &TestDb, name: &str, n: usize, ms: i64, outcome: &str) {
    db.conn()
        .execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
             INSERT INTO JobRun (jobName, status, parameters, createdAt, startedAt, finishedAt, \
             outcomeSummary, updatedAt) \
             SELECT ?2, 'COMPLETED', '{}', '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z', \
             strftime('%Y-%m-%dT%H:%M:%fZ', '2026-12-01T10:00:00.000', '+' || (?3 / 1000.0) || ' seconds'), \
             ?4, '2026-12-01T10:00:00.000Z' FROM k",
            rusqlite::params![n as i64, name, ms, outcome],
        )
        .expect("seed runs");
}

/// The same page at a phone's width.
fn phone(b: &mut common::cdp::Browser) {
    b.page(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );
}

#[test]
fn a_run_without_a_total_shows_the_usual_duration_and_what_is_left() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-usual-eta");
    db.ok(&["migrate"]);
    seed_completed(&db, "demo-unknown-total", 20, 120_000, "{}");
    let (_serve, mut b) = open_page(&db, 1400, 900);
    // 1,000 items of 200 ms: minutes, and never a total.
    let id = db.enqueue("demo-unknown-total", &["count=1000", "delay_ms=200"]);
    db.wait_status(id, "RUNNING", WAIT);
    let card = format!("#active-list li[data-run-id=\"{id}\"] .rate");
    b.wait_js(
        "the card's ETA from the usual",
        WAIT,
        &format!(
            "/usually about 2 min; ~2 min left$/.test(document.querySelector('{card}')?.textContent ?? '')"
        ),
    );
    b.eval("document.getElementById('active-panel').scrollIntoView()");
    screenshot(&mut b, &db, "usual-eta-card-1400");
    b.eval(&format!("location.hash = '#/runs/{id}'"));
    b.wait_js(
        "the details' ETA from the usual",
        WAIT,
        "/usually about 2 min; ~2 min left$/.test(document.getElementById('details-rate')?.textContent ?? '')",
    );
    assert!(
        text_of(&mut b, "#details-timings")
            .contains("Usuallyabout 2 min (median of the last 20 completed)"),
        "{}",
        text_of(&mut b, "#details-timings")
    );
    screenshot(&mut b, &db, "usual-eta-details-1400");
    phone(&mut b);
    b.wait_js(
        "the details' ETA on a phone",
        WAIT,
        "/usually about 2 min/.test(document.getElementById('details-rate')?.textContent ?? '') && \
         document.documentElement.scrollWidth <= 390",
    );
    screenshot(&mut b, &db, "usual-eta-details-390");
    db.ok(&["cancel", &id.to_string()]);
    db.wait_status(id, "CANCELLED", WAIT);
}

#[test]
fn a_run_far_from_the_usual_is_flagged_in_the_history_and_the_details() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-usual-flag");
    db.ok(&["migrate"]);
    seed_completed(
        &db,
        "demo-multi-phase",
        20,
        1000,
        r#"{"inserts": 3000, "updates": 6000, "errors": 1000}"#,
    );
    let (_serve, mut b) = open_page(&db, 1400, 900);
    // A real run of 10 records: a thousandth of the usual counters.
    let small = db.enqueue("demo-multi-phase", &["count=10", "delay_ms=0"]);
    db.wait_status(small, "COMPLETED", WAIT);
    let flag = format!("#history-rows tr[data-run-id=\"{small}\"] .unusual-flag");
    b.wait_js(
        "the flag in the history row",
        WAIT,
        &format!("document.querySelector('{flag}') !== null"),
    );
    assert_eq!(
        text_of(&mut b, &flag),
        "⚑ 1 error; usually about 1,000 (+2)"
    );
    // Its last stage reset its count: the result names its counters.
    assert!(
        text_of(
            &mut b,
            &format!("#history-rows tr[data-run-id=\"{small}\"] .col-summary")
        )
        .starts_with("1 error · 3 inserts · 6 updates ⚑"),
        "{}",
        text_of(
            &mut b,
            &format!("#history-rows tr[data-run-id=\"{small}\"] .col-summary")
        )
    );
    // The usual runs are not flagged.
    assert_eq!(
        b.eval("document.querySelectorAll('#history-rows .unusual-flag').length"),
        1
    );
    b.eval("document.getElementById('history-panel').scrollIntoView()");
    screenshot(&mut b, &db, "usual-flag-history-1400");
    b.eval(&format!("location.hash = '#/runs/{small}'"));
    b.wait_js(
        "the flags in the details",
        WAIT,
        "document.querySelectorAll('#details-unusual li').length === 3",
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('#details-unusual li')].map(li => li.textContent).join(' | ')"),
        "1 error; usually about 1,000 | 3 inserts; usually about 3,000 | 6 updates; usually about 6,000"
    );
    assert!(text_of(&mut b, "#details-unusual").starts_with("Unusual for demo-multi-phase"));
    screenshot(&mut b, &db, "usual-flag-details-1400");
    phone(&mut b);
    b.wait_js(
        "the flags on a phone, inside the screen",
        WAIT,
        "(() => { const r = document.getElementById('details-unusual').getBoundingClientRect(); \
         return r.right <= 390 && document.documentElement.scrollWidth <= 390; })()",
    );
    screenshot(&mut b, &db, "usual-flag-details-390");
    b.eval("location.hash = '#history-panel'");
    b.wait_js(
        "the flagged row on a phone",
        WAIT,
        &format!(
            "(() => {{ const f = document.querySelector('{flag}'); \
             return f !== null && f.getBoundingClientRect().right <= 390; }})()"
        ),
    );
    screenshot(&mut b, &db, "usual-flag-history-390");
}
