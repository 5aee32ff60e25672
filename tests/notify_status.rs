//! `jobmgr status` shows the notification outbox: its rows by status and
//! the newest failure that is not delivered, in its text and in `--json`.

mod common;
mod notify_support;

use common::{TestDb, wait_for};
use notify_support::{Receiver, Reply, WAIT, outbox, setup, start_worker, webhook};
use serde_json::Value;

fn status_json(db: &TestDb) -> Value {
    serde_json::from_str(&db.ok(&["status", "--json"])).expect("status JSON")
}

#[test]
fn status_counts_the_outbox_and_shows_the_last_failure() {
    let receiver = Receiver::start(&[Reply::Status(503)]);
    let (db, clock) = setup("notify-status", &webhook(&receiver, "\"run_failed\"", ""));
    let text = db.ok(&["status"]);
    assert!(
        text.contains("notifications: 0 pending, 0 delivered, 0 failed"),
        "{text}"
    );
    assert!(!text.contains("last failure"), "{text}");
    assert_eq!(
        status_json(&db)["notifications"]["lastFailure"],
        Value::Null
    );

    // The first attempt is answered 503: pending, with its error.
    let worker = start_worker(&db, &clock);
    let run = db.enqueue("fails", &[]);
    wait_for("the failed attempt to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[3] == 1)
    });
    let text = db.ok(&["status"]);
    assert!(
        text.contains("notifications: 1 pending, 0 delivered, 0 failed"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("last failure:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!(
            "run_failed of run:{run} to 'ops' (PENDING, attempt 1)"
        )) && line.ends_with("answered HTTP 503"),
        "{text}"
    );
    let n = &status_json(&db)["notifications"];
    assert_eq!(
        (&n["pending"], &n["delivered"], &n["failed"]),
        (&1.into(), &0.into(), &0.into())
    );
    assert_eq!(n["lastFailure"]["notifier"], "ops", "{n}");
    assert_eq!(n["lastFailure"]["runId"], run, "{n}");
    assert!(
        n["lastFailure"]["lastError"]
            .as_str()
            .is_some_and(|e| e.ends_with("answered HTTP 503")),
        "{n}"
    );

    // Delivered on the retry: no failure left to show.
    clock.advance(10_500);
    wait_for("the retry to be delivered", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[2] == "DELIVERED")
    });
    let text = db.ok(&["status"]);
    assert!(
        text.contains("notifications: 0 pending, 1 delivered, 0 failed"),
        "{text}"
    );
    assert!(!text.contains("last failure"), "{text}");
    drop(worker);

    // A delivery that gave up is counted as failed and shown.
    db.conn()
        .execute(
            "INSERT INTO NotifyOutbox (event, subject, notifier, status, attempts, \
             nextAttemptAt, lastError, createdAt) VALUES ('worker_dead', 'worker:9', 'ops', \
             'FAILED', 8, '2026-12-01T00:00:00.000Z', 'connect to 192.0.2.1:80: timed out', \
             '2026-12-01T00:00:00.000Z')",
            [],
        )
        .expect("insert a failed delivery");
    let text = db.ok(&["status"]);
    assert!(
        text.contains("notifications: 0 pending, 1 delivered, 1 failed"),
        "{text}"
    );
    assert!(
        text.contains(
            "last failure: worker_dead of worker:9 to 'ops' (FAILED, attempt 8): \
             connect to 192.0.2.1:80: timed out"
        ),
        "{text}"
    );
    assert_eq!(status_json(&db)["notifications"]["failed"], 1);
}
