//! The Insight panel in headless Chromium (skipped where it is missing):
//! SVG bars whose count and heights follow the runs made in the test, the
//! hour/day/week switch kept in the URL, the hover box, live updates, the
//! per-type table linking to the history filtered to its type, and no
//! horizontal overflow at 390 px; also the audit filters kept in the URL
//! and WAITING runs in the Active panel with what they wait for.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, load_page, open_page, screenshot, text_of};

/// Inserts a finished run of `job`, finished `ago_s` seconds ago.
fn finished(db: &TestDb, job: &str, status: &str, ago_s: i64) {
    db.conn()
        .execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, finishedAt) \
             VALUES (?1, ?2, \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), \
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4))",
            rusqlite::params![
                job,
                status,
                format!("-{} seconds", ago_s + 2),
                format!("-{ago_s} seconds")
            ],
        )
        .expect("insert a finished run");
}

/// The chart's buckets that have bars: (finished, failed, drawn height of
/// all its bars, drawn height of the failed bar), the heights in percent
/// of the chart's as the browser laid them out, in time order.
const BARS: &str = "(() => { const svg = document.querySelector('#chart svg'); \
     const full = svg.getBoundingClientRect().height; \
     const tall = (r) => r ? r.getBoundingClientRect().height * 100 / full : 0; \
     return JSON.stringify([...svg.querySelectorAll('.chart-bucket')] \
     .filter(g => g.querySelector('rect')).map(g => [Number(g.dataset.finished), \
     Number(g.dataset.failed), [...g.querySelectorAll('rect')].reduce((n, r) => n + tall(r), 0), \
     tall(g.querySelector('.chart-failed'))])); })()";

#[test]
fn the_charts_draw_the_runs_and_the_table_links_to_the_history() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-insight");
    db.ok(&["migrate"]);
    // Ten minutes ago: three completed and one failed; half an hour ago two
    // completed; and one run of another type.
    for status in ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"] {
        finished(&db, "demo-known-total", status, 600);
    }
    finished(&db, "demo-known-total", "COMPLETED", 1_800);
    finished(&db, "demo-known-total", "COMPLETED", 1_800);
    finished(&db, "demo-unknown-total", "COMPLETED", 1_800);
    let (serve, mut b) = open_page(&db, 1400, 900);
    b.wait_js(
        "the chart",
        WAIT,
        "document.querySelectorAll('#chart .chart-bucket').length === 96",
    );
    b.eval("document.querySelector('#chart-window [data-window=\"hour\"]').click()");
    b.wait_js(
        "the hour's 60 buckets",
        WAIT,
        "document.querySelectorAll('#chart .chart-bucket').length === 60",
    );
    let bars = b.eval(BARS);
    let bars: Vec<(i64, i64, f64, f64)> =
        serde_json::from_str(bars.as_str().expect("JSON")).expect("bars");
    // Two buckets with bars (the other type's run shares the older one):
    // the tallest fills the chart, the other is three quarters of it, and
    // the failed part is a quarter of the tallest.
    assert_eq!(bars.len(), 2, "{bars:?}");
    assert_eq!((bars[0].0, bars[0].1), (3, 0));
    assert_eq!((bars[1].0, bars[1].1), (4, 1));
    assert!((bars[1].2 - 100.0).abs() < 1.0, "{bars:?}");
    assert!((bars[0].2 - 75.0).abs() < 1.0, "{bars:?}");
    assert!((bars[1].3 - 25.0).abs() < 1.0, "{bars:?}");
    assert_eq!(text_of(&mut b, "#chart-total"), "7 finished, 1 failed");
    assert!(b.eval("location.search").as_str() == Some("?chart=hour"));

    // Hovering the newer bucket shows its values.
    b.eval(
        "(() => { const svg = document.querySelector('#chart svg'); \
         const g = [...svg.querySelectorAll('.chart-bucket')].findLast(g => g.querySelector('rect')); \
         const i = [...svg.querySelectorAll('.chart-bucket')].indexOf(g); \
         const r = svg.getBoundingClientRect(); \
         svg.dispatchEvent(new PointerEvent('pointermove', {bubbles: true, \
           clientX: r.left + (i + 0.5) * r.width / 60, clientY: r.top + 10})); })()",
    );
    b.wait_js(
        "the hover box",
        WAIT,
        "!document.getElementById('chart-tip').hidden",
    );
    let tip = text_of(&mut b, "#chart-tip");
    assert!(tip.ends_with("4 finished, 1 failed"), "{tip}");

    // The table: one row per type, with its runs and failures.
    let row = "#insight-rows tr[data-job=\"demo-known-total\"]";
    let cells = b.eval(&format!(
        "[...document.querySelectorAll('{row} td')].map(td => td.textContent).join(' | ')"
    ));
    let cells = cells.as_str().unwrap_or_default().to_string();
    assert!(
        cells.starts_with("demo-known-total | 6 | 1 (17%) | "),
        "{cells}"
    );
    // The newest finished run of the type is the failed one.
    assert!(cells.contains("FAILED"), "{cells}");

    // A run finished by the worker arrives without a reload.
    let id = db.enqueue("demo-known-total", &["count=1", "delay_ms=0"]);
    db.wait_status(id, "COMPLETED", WAIT);
    b.wait_js(
        "the chart to count the new run",
        WAIT,
        "document.getElementById('chart-total').textContent === '8 finished, 1 failed'",
    );

    // The window survives a reload.
    b.eval("document.querySelector('#chart-window [data-window=\"week\"]').click()");
    b.wait_js("the week's URL", WAIT, "location.search === '?chart=week'");
    b.reload();
    b.wait_js(
        "the week after the reload",
        WAIT,
        "document.querySelectorAll('#chart .chart-bucket').length === 168 && \
         document.querySelector('#chart-window [data-window=\"week\"]').getAttribute('aria-pressed') === 'true'",
    );
    screenshot(&mut b, &db, "insight-1400");

    // The type links to the history filtered to it.
    b.eval(&format!(
        "document.querySelector('{row} a.insight-job').click()"
    ));
    b.wait_js(
        "the history filtered to the type",
        WAIT,
        "new URLSearchParams(location.search).get('name') === 'demo-known-total' && \
         document.querySelector('#history-filters [name=name]').value === 'demo-known-total' && \
         document.querySelectorAll('#history-rows tr[data-run-id]').length === 7",
    );
    let names = b.eval(
        "[...new Set([...document.querySelectorAll('#history-rows tr[data-run-id] .col-name')]\
         .map(td => td.textContent))].join(',')",
    );
    assert_eq!(names, "demo-known-total");
    drop(b);

    // On a phone: the chart is there and nothing overflows sideways.
    let mut phone = load_page(&db, &serve, 390, 844);
    phone.wait_js(
        "the chart on a phone",
        WAIT,
        "document.querySelectorAll('#chart .chart-bucket').length === 96",
    );
    let wide = phone.eval("document.documentElement.scrollWidth");
    assert!(
        wide.as_i64().is_some_and(|w| w <= 390),
        "page is {wide} px wide"
    );
    phone.eval("document.getElementById('insight-panel').scrollIntoView()");
    screenshot(&mut phone, &db, "insight-390");
}

#[test]
fn audit_filters_stay_in_the_url_and_waiting_runs_are_active() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-insight-small");
    db.ok(&["migrate"]);
    let later = db.ok(&[
        "enqueue",
        "demo-known-total",
        "--at",
        "2099-01-01T00:00:00Z",
    ]);
    let waiting = db.ok(&["enqueue", "demo-unknown-total", "--after", &later]);
    let (_serve, mut b) = open_page(&db, 1400, 900);
    let card = format!("#active-list li[data-run-id=\"{waiting}\"]");
    b.wait_js(
        "the waiting run naming the run it waits for",
        WAIT,
        &format!(
            "document.querySelector('{card} .waits-for')?.textContent === \
             'Waits for demo-known-total #{later} (scheduled)'"
        ),
    );
    assert!(text_of(&mut b, &format!("{card} .status")).contains("WAITING"));

    // An audit filter goes into the URL beside the history's, and back
    // into the form after a reload.
    b.eval(
        "(() => { const h = document.querySelector('#history-filters [name=q]'); h.value = 'demo'; \
         h.dispatchEvent(new Event('input', {bubbles: true})); \
         const f = document.querySelector('#audit-filters [name=source]'); f.value = 'cli'; \
         f.dispatchEvent(new Event('change', {bubbles: true})); })()",
    );
    b.wait_js(
        "both filters in the URL",
        WAIT,
        "new URLSearchParams(location.search).get('audit-source') === 'cli' && \
         new URLSearchParams(location.search).get('q') === 'demo'",
    );
    b.reload();
    b.wait_js(
        "the audit filter after the reload",
        WAIT,
        "document.querySelector('#audit-filters [name=source]').value === 'cli' && \
         document.querySelector('#history-filters [name=q]').value === 'demo' && \
         document.querySelectorAll('#audit-rows tr[data-audit-id]').length === 2",
    );
}
