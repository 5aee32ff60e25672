//! The worker panel shows what retention keeps and a disk-low warning,
//! in real headless Chromium (skipped where Chromium is missing).

mod common;

use common::page::{SERIAL, Serve, WAIT, chromium_available, load_page, text_of};
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
