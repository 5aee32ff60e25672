//! The page and run policies: a run waiting for its next attempt shows
//! "Attempt 2 of 3, next in ..." and its earlier attempt with its error on
//! its page, and a paused type is marked in the "Run a job" form.

mod common;

use common::TestDb;
use common::page::{SERIAL, WAIT, chromium_available, open_page};

#[test]
fn a_waiting_retry_shows_its_attempts_and_a_paused_type_is_marked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-policies");
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[jobs.doomed]\ncommand = [\"/bin/sh\", \"-c\", \"echo '<b>no</b>' >&2; exit 3\"]\n\n\
         [policies.doomed.retry]\nmax_attempts = 3\nbackoff = \"fixed\"\ninitial_secs = 600\n",
    )
    .expect("write config");
    let (serve, mut b) = open_page(&db, 1280, 900);
    db.ok(&["pause", "demo-unknown-total"]);
    let id = db.enqueue("doomed", &[]);
    common::wait_for("the run waiting for attempt 2", WAIT, || {
        db.scalar(&format!(
            "SELECT status || attempt FROM JobRun WHERE id = {id}"
        )) == "SCHEDULED2"
    });
    b.navigate(&format!("{}#/runs/{id}", serve.url));
    b.wait_js(
        "the run's page to show the attempt and the earlier one",
        WAIT,
        "(document.getElementById('details-due')?.textContent || '').startsWith('Attempt 2 of 3, next in ') && \
         document.querySelectorAll('#details-attempts li').length === 1 && \
         document.querySelector('#details-attempts li').textContent.includes('exited with code 3\\n<b>no</b>')",
    );
    b.eval("document.getElementById('newjob-open').click()");
    b.wait_js(
        "the paused type marked in the form",
        WAIT,
        "[...document.getElementById('newjob-type').options].some(o => \
         o.value === 'demo-unknown-total' && o.textContent === 'demo-unknown-total (paused, 0 waiting)')",
    );
}
