//! The Notifications panel lists the notifiers and a failed delivery with
//! its error, inserted as text, in real headless Chromium (skipped where
//! Chromium is missing).

mod common;

use common::page::{SERIAL, WAIT, open_page, screenshot, text_of};
use common::{TestDb, wait_for};

#[test]
fn the_notifications_panel_shows_a_pending_delivery_and_its_error_as_text() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !common::page::chromium_available() {
        return;
    }
    let db = TestDb::new("browser-notify");
    // A notifier that always fails, saying something that looks like HTML.
    std::fs::write(
        db.dir.join("jobmgr.toml"),
        r#"
[jobs.fails]
command = ["sh", "-c", "exit 3"]

[[notify]]
name = "pager"
on = ["run_failed"]
command = ["sh", "-c", "echo '<img src=x id=injected>' >&2; exit 1"]
"#,
    )
    .expect("write config");
    let (_serve, mut b) = open_page(&db, 1280, 900);
    let run = db.enqueue("fails", &[]);
    wait_for("the failed delivery attempt", WAIT, || {
        db.scalar("SELECT attempts FROM NotifyOutbox") == "1"
    });
    // The panel refreshes after a failed run and every 10 s.
    b.wait_js(
        "the pending delivery in the panel",
        WAIT,
        "document.querySelector('#notify-rows .delivery-pending') !== null",
    );
    let rows = text_of(&mut b, "#notify-rows");
    assert!(rows.contains("run_failed"), "{rows}");
    assert!(rows.contains(&format!("#{run}")), "{rows}");
    assert!(rows.contains("pager"), "{rows}");
    assert!(
        rows.contains("exited with code 1: <img src=x id=injected>"),
        "{rows}"
    );
    let injected = b.eval("document.getElementById('injected') === null");
    assert_eq!(
        injected,
        serde_json::Value::Bool(true),
        "the error is text, not HTML"
    );
    let notifiers = text_of(&mut b, "#notify-notifiers");
    assert!(notifiers.contains("pager command sh -c"), "{notifiers}");
    assert!(text_of(&mut b, "#notify-count").starts_with("1 pending"));
    b.eval("document.getElementById('notify-panel').scrollIntoView()");
    screenshot(&mut b, &db, "notifications");
}
