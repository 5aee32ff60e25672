//! The Schedules panel in Chromium: a schedule made through the form
//! (whose preview shows the next due times as the expression is typed, and
//! says where a wrong one is wrong), run now from its row, its run in the
//! ledger's schedule and in the list, pause and resume, and the ledger.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, chromium_available, js_str, open_page};

fn set_field(name: &str, value: &str) -> String {
    format!(
        "{{ const el = document.getElementById('schedule-form').elements[{}]; el.value = {}; \
         el.dispatchEvent(new Event('input')); }}",
        js_str(name),
        js_str(value)
    )
}

#[test]
fn a_schedule_made_in_the_form_previews_its_times_and_runs_now() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-schedules");
    let (_serve, mut b) = open_page(&db, 1280, 1000);
    b.wait_js(
        "the empty list",
        WAIT,
        "document.querySelector('#schedules-rows .empty')?.textContent.startsWith('No schedules')",
    );
    b.eval("document.getElementById('schedule-new').click()");
    b.wait_js(
        "the job types in the form",
        WAIT,
        "[...document.getElementById('schedule-job').options].some(o => o.value === 'demo-known-total')",
    );
    b.eval(&set_field("name", "nightly"));
    b.eval(&set_field("job", "demo-known-total"));
    b.eval(&set_field("timezone", "Europe/Berlin"));
    // A wrong expression: the preview says which field.
    b.eval(&set_field("cron", "30 25 * * *"));
    b.wait_js(
        "the preview to point at the hour",
        WAIT,
        "(() => { const p = document.getElementById('schedule-preview'); \
         return p.dataset.state === 'error' && /hour/i.test(p.textContent); })()",
    );
    b.eval(&set_field("cron", "30 2 * * *"));
    b.wait_js(
        "five due times at 02:30 Berlin time",
        WAIT,
        "(() => { const items = [...document.querySelectorAll('#schedule-preview li')]; \
         return document.getElementById('schedule-preview').dataset.state === 'ok' && items.length === 5 && \
         items.every(li => li.textContent.includes('02:30:00') && li.textContent.includes('Europe/Berlin')); })()",
    );
    b.eval(&set_field("parameters", r#"{"count": 2, "delay_ms": 0}"#));
    b.eval("document.getElementById('schedule-submit').click()");
    b.wait_js(
        "the new schedule in the list with its next run",
        WAIT,
        "(() => { const r = document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"]'); \
         return r !== null && r.textContent.includes('30 2 * * *') && \
         r.querySelector('.schedule-next time') !== null && r.textContent.includes('never'); })()",
    );
    assert_eq!(
        db.query("SELECT job, cron, timezone FROM Schedule WHERE name = 'nightly'")[0],
        vec!["demo-known-total", "30 2 * * *", "Europe/Berlin"]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM Audit WHERE action LIKE 'schedule.%'"),
        "1"
    );

    b.eval("document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"] .btn-run-now').click()");
    b.wait_js(
        "the run it made, finished, as the schedule's last run",
        WAIT,
        "(() => { const r = document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"] .schedule-last'); \
         return r !== null && r.querySelector('a') !== null && r.textContent.includes('COMPLETED'); })()",
    );
    let run = db.query("SELECT id, status, scheduleName, parameters FROM JobRun");
    assert_eq!(run.len(), 1);
    assert_eq!(run[0][2], "nightly");
    assert!(
        run[0][3].as_str().unwrap_or("").contains("\"count\":2"),
        "{run:?}"
    );

    b.eval("document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"] .btn-pause').click()");
    b.wait_js(
        "the row to say paused, with Resume",
        WAIT,
        "(() => { const r = document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"]'); \
         return r !== null && r.textContent.includes('paused') && r.querySelector('.btn-resume') !== null; })()",
    );
    assert_eq!(
        db.scalar("SELECT paused FROM ScheduleState WHERE scheduleName = 'nightly'"),
        "1"
    );
    b.eval("document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"] .btn-resume').click()");
    b.wait_js(
        "active again",
        WAIT,
        "(() => { const r = document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"]'); \
         return r !== null && r.textContent.includes('active'); })()",
    );
    // The row opens its next due times and ledger.
    b.eval("document.querySelector('#schedules-rows tr[data-schedule=\"nightly\"] td').click()");
    b.wait_js(
        "ten next due times in UTC and in Berlin",
        WAIT,
        "(() => { const items = [...document.querySelectorAll('#schedule-ledger .due-times li')]; \
         return items.length === 10 && items.every(li => li.textContent.includes('02:30')); })()",
    );
}
