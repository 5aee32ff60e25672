//! The worker panel shows what retention keeps and a disk-low warning,
//! in real headless Chromium (skipped where Chromium is missing).

mod common;

use common::page::{SERIAL, Serve, WAIT, chromium_available, load_page, screenshot, text_of};
use common::{TestDb, wait_for};

#[test]
fn the_worker_panel_shows_retention_and_a_low_disk() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-ops");
    // A threshold above any real free space: a petabyte.
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        "[retention]\nfinished_days = 14\nfailed_days = 60\ndisk_free_min_mb = 1000000000\n",
    )
    .expect("write config");
    let serve = Serve::start(&db);
    wait_for("the worker's housekeeping reports", WAIT, || {
        db.scalar("SELECT count(*) FROM Housekeeping") == "2"
    });
    let mut b = load_page(&db, &serve, 1280, 900);
    b.wait_js(
        "the disk warning",
        WAIT,
        "document.getElementById('disk-warning')?.textContent.startsWith('Disk low:')",
    );
    let retention = text_of(&mut b, "#worker-retention");
    assert!(
        retention.starts_with("keeps finished runs 14 d, failed 60 d; last run "),
        "{retention}"
    );
}

#[test]
fn the_worker_panel_shows_how_hard_the_writer_works() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !chromium_available() {
        return;
    }
    let db = TestDb::new("browser-writer");
    let serve = Serve::start_with(&db, &["--no-worker"]);
    // A worker that lived 100 s: its writer busy 25 s of them, 5,000
    // commits, 10 s of its busy time in COMMIT.
    db.insert_worker_with_writer_load();
    // No live worker: the page is opened without waiting for one.
    let mut b = common::cdp::Browser::launch(&db.dir, 1280, 900);
    b.navigate(&serve.url);
    let shown = "document.getElementById('worker-writer')?.textContent";
    b.wait_js(
        "the writer's load since the start",
        WAIT,
        &format!("{shown} === 'busy 25 % (since start) · 50 commits/s · sync 40 %'"),
    );
    // A later heartbeat of the same worker: its last 20 s, busy 18 of
    // them, 3,000 more commits, 4.5 s syncing.
    db.conn()
        .execute_batch(
            "UPDATE Worker SET heartbeatAt = '2026-01-01T00:02:00.000Z', \
             writerBusyUs = 43000000, writerCommits = 8000, writerSyncUs = 14500000",
        )
        .expect("update worker");
    b.wait_js(
        "the writer's load over the last heartbeat interval",
        WAIT,
        &format!("{shown} === 'busy 90 % (last 20s) · 150 commits/s · sync 25 %'"),
    );
    screenshot(&mut b, &db, "worker-writer");
}
