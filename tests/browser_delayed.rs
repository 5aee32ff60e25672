//! The page and delayed runs: "Run a job" with a time makes a SCHEDULED
//! run at that time in the page's zone, and the active list and the run's
//! page show it waiting, in that zone, with a Cancel button.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, chromium_available, open_page};
use serde_json::json;

#[test]
fn a_run_scheduled_from_the_form_waits_at_the_time_typed_in_the_pages_zone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-delayed");
    let (serve, mut b) = open_page(&db, 1280, 900);
    // Nine hours east of UTC, no daylight saving.
    b.page(
        "Emulation.setTimezoneOverride",
        json!({"timezoneId": "Asia/Tokyo"}),
    );
    b.navigate(&serve.url);
    b.wait_js(
        "the page in Tokyo time",
        WAIT,
        "document.getElementById('tz-toggle')?.textContent === 'Times: Asia/Tokyo'",
    );
    b.eval("document.getElementById('newjob-open').click()");
    b.wait_js(
        "the job types in the form",
        WAIT,
        "[...document.getElementById('newjob-type').options].some(o => o.value === 'demo-known-total')",
    );
    b.eval(
        "{ const s = document.getElementById('newjob-type'); s.value = 'demo-known-total'; \
         s.dispatchEvent(new Event('change')); }",
    );
    b.wait_js(
        "the form to name the zone",
        WAIT,
        "document.getElementById('newjob-zone').textContent === 'Asia/Tokyo'",
    );
    b.eval(
        "document.getElementById('newjob-run-at').value = '2031-05-06T16:08'; \
         document.getElementById('newjob-submit').click()",
    );
    b.wait_js(
        "the new run's page",
        WAIT,
        "location.hash.startsWith('#/runs/')",
    );
    let id: i64 = db
        .scalar("SELECT max(id) FROM JobRun")
        .parse()
        .expect("an id");
    assert_eq!(
        db.query(&format!(
            "SELECT status, runAt, triggeredBy FROM JobRun WHERE id = {id}"
        ))[0],
        vec!["SCHEDULED", "2031-05-06T07:08:00.000Z", "ui"],
        "16:08 in Tokyo is 07:08 UTC"
    );
    b.wait_js(
        "the run's page to say when it runs, in Tokyo time, with Cancel",
        WAIT,
        "document.getElementById('details-due')?.textContent === 'Scheduled for 2031-05-06 16:08:00' && \
         document.querySelector('#details-summary .btn-cancel') !== null",
    );
    b.eval("location.hash = ''");
    b.wait_js(
        "the active list to show it waiting",
        WAIT,
        &format!(
            "(() => {{ const c = document.querySelector('#active-list [data-run-id=\"{id}\"]'); \
             return c !== null && c.querySelector('.status-scheduled') !== null && \
             c.querySelector('.progress-text').textContent === 'Scheduled for 2031-05-06 16:08:00'; }})()"
        ),
    );
    b.wait_js(
        "the Scheduled tile to count it",
        WAIT,
        "document.querySelector('#stat-scheduled .tile-value')?.textContent === '1'",
    );
    assert_eq!(
        db.status_of(id),
        "SCHEDULED",
        "the worker leaves it waiting"
    );
}
