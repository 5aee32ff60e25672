//! WAITING runs (enqueued `--after` runs that have not completed) are a
//! status like the others: `jobmgr jobs --status WAITING` lists them, and
//! the page has a Waiting tile in its statistics and a Waiting history
//! filter (in real headless Chromium, skipped where it is missing).

mod common;

use common::page::{SERIAL, WAIT, open_page, screenshot};
use common::{TestDb, wait_for};
use serde_json::Value;

/// A QUEUED run of a paused type and a run WAITING for it; returns their ids.
fn waiting_behind_paused(db: &TestDb) -> (i64, i64) {
    db.ok(&["migrate"]);
    db.ok(&["pause", "demo-known-total"]);
    let first = db.enqueue("demo-known-total", &[]);
    let waiting: i64 = db
        .ok(&[
            "enqueue",
            "demo-unknown-total",
            "--after",
            &first.to_string(),
        ])
        .parse()
        .expect("an id");
    assert_eq!(db.status_of(waiting), "WAITING");
    (first, waiting)
}

#[test]
fn jobs_status_waiting_lists_only_the_waiting_runs() {
    let db = TestDb::new("waiting-cli");
    let (first, waiting) = waiting_behind_paused(&db);
    let out = db.ok(&["jobs", "--status", "WAITING"]);
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, [waiting.to_string()], "{out}");
    assert!(out.contains("WAITING"), "{out}");
    let json: Value =
        serde_json::from_str(&db.ok(&["--json", "jobs", "--status", "waiting,queued"]))
            .expect("JSON");
    let mut got: Vec<(i64, String)> = json
        .as_array()
        .or_else(|| json["runs"].as_array())
        .expect("a list of runs")
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap_or(0),
                r["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (first, "QUEUED".to_string()),
            (waiting, "WAITING".to_string())
        ]
    );
    let err = db.fails(&["jobs", "--status", "WAITNG"]);
    assert!(err.contains("WAITNG"), "{err}");
}

#[test]
fn the_page_counts_waiting_runs_in_a_tile_and_filters_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-waiting");
    let (_first, waiting) = waiting_behind_paused(&db);
    let (_serve, mut b) = open_page(&db, 1280, 900);
    b.wait_js(
        "the Waiting tile to count it",
        WAIT,
        "document.querySelector('#stat-waiting .tile-value')?.textContent === '1' && \
         document.querySelector('#stat-waiting .tile-label')?.textContent === 'Waiting'",
    );
    screenshot(&mut b, &db, "waiting-tile");
    b.eval(
        "(() => { const box = document.querySelector('#history-filters input[value=\"WAITING\"]'); \
         box.checked = true; box.dispatchEvent(new Event('change', { bubbles: true })); })()",
    );
    b.wait_js(
        "the history to show only the waiting run",
        WAIT,
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('#history-rows tr')]; \
             return rows.length === 1 && rows[0].dataset.runId === '{waiting}' && \
             rows[0].querySelector('.status-waiting') !== null; }})()"
        ),
    );
    // Cancelling it from the page is offered for the waiting run.
    b.wait_js(
        "the bulk cancel button",
        WAIT,
        "document.getElementById('bulk-cancel').textContent === 'Cancel all 1'",
    );
    wait_for("the run to stay waiting", WAIT, || {
        db.status_of(waiting) == "WAITING"
    });
}
