//! The events the worker finds or records besides failed runs: a run
//! still RUNNING past `overdue_minutes` (`run_overdue`), a schedule's due
//! times recorded as missed (`schedule_missed`, one message per schedule
//! however many due times), and free disk space below the guard's
//! threshold (`disk_low`), each delivered to a local webhook receiver.

mod common;
mod notify_support;

use common::wait_for;
use notify_support::{Receiver, WAIT, outbox, setup, start_worker, webhook};

#[test]
fn a_run_still_running_past_overdue_minutes_is_posted_once_for_the_types_named() {
    let receiver = Receiver::start(&[]);
    let notify = format!(
        "[jobs.slow]\ncommand = [\"sleep\", \"300\"]\n\n\
         [jobs.other]\ncommand = [\"sleep\", \"300\"]\n\n{}",
        webhook(
            &receiver,
            "\"run_overdue\"",
            "overdue_minutes = 1\njobs = [\"slow\"]"
        )
    );
    let (db, clock) = setup("notify-overdue", &notify);
    let worker = start_worker(&db, &clock);
    let run = db.enqueue("slow", &[]);
    let other = db.enqueue("other", &[]);
    db.wait_status(run, "RUNNING", WAIT);
    db.wait_status(other, "RUNNING", WAIT);
    // Not yet overdue: a minute has not passed on the clock.
    assert!(outbox(&db).is_empty());
    clock.advance(61_000);
    let got = receiver.wait_for(1, WAIT, "the overdue run's POST");
    let b = &got[0].body;
    assert_eq!(b["event"], "run_overdue");
    assert_eq!(b["runId"], run);
    assert_eq!(b["status"], "RUNNING");
    assert_eq!(b["overdueMinutes"], 1);
    assert!(
        b["text"].as_str().is_some_and(|t| t.contains(&format!(
            "run {run} (slow) is still RUNNING 1 min after it started"
        ))),
        "{b}"
    );
    // Later looks find it queued already.
    clock.advance(61_000);
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[2] == "DELIVERED")
    });
    assert_eq!(outbox(&db).len(), 1, "nothing for a type outside `jobs`");
    for id in [run, other] {
        db.ok(&["cancel", &id.to_string()]);
        db.wait_status(id, "CANCELLED", WAIT);
    }
    drop(worker);
}

#[test]
fn missed_due_times_of_a_schedule_are_one_message() {
    let receiver = Receiver::start(&[]);
    let notify = format!(
        "[schedules.minutely]\njob = \"fails\"\ncron = \"* * * * *\"\n\n{}",
        webhook(&receiver, "\"schedule_missed\"", "")
    );
    let (db, clock) = setup("notify-missed", &notify);
    let worker = start_worker(&db, &clock);
    wait_for("the scan's cursor and the schedule", WAIT, || {
        db.scalar("SELECT count(*) FROM NotifyCursor WHERE name = 'schedule_missed'") == "1"
            && db.scalar("SELECT count(*) FROM ScheduleState") == "1"
    });
    // Five minutes pass at once: the older due times are decided late.
    clock.advance(5 * 60_000);
    let got = receiver.wait_for(1, WAIT, "the missed schedule's POST");
    let b = &got[0].body;
    assert_eq!(b["event"], "schedule_missed");
    assert_eq!(b["schedule"], "minutely");
    assert_eq!(b["job"], "fails");
    let missed = db.scalar("SELECT count(*) FROM ScheduleTick WHERE outcome = 'SKIPPED_MISSED'");
    assert!(missed.parse::<u64>().is_ok_and(|n| n >= 3), "{missed}");
    assert_eq!(b["missed"].to_string(), missed, "{b}");
    wait_for("the delivery to be recorded", WAIT, || {
        outbox(&db).first().is_some_and(|r| r[2] == "DELIVERED")
    });
    assert_eq!(outbox(&db).len(), 1, "one message for the gap");
    drop(worker);
}

#[test]
fn free_space_below_the_threshold_is_posted_with_the_disk_report() {
    let receiver = Receiver::start(&[]);
    // A threshold above any real free space: a petabyte.
    let notify = format!(
        "[retention]\ndisk_free_min_mb = 1000000000\n\n{}",
        webhook(&receiver, "\"disk_low\"", "")
    );
    let (db, clock) = setup("notify-disk", &notify);
    let worker = start_worker(&db, &clock);
    let got = receiver.wait_for(1, WAIT, "the disk-low POST");
    let b = &got[0].body;
    assert_eq!(b["event"], "disk_low");
    assert_eq!(b["thresholdBytes"], 1_000_000_000u64 * 1024 * 1024);
    assert!(b["freeBytes"].as_u64().is_some(), "{b}");
    assert!(
        b["text"]
            .as_str()
            .is_some_and(|t| t.contains("MiB free beside")),
        "{b}"
    );
    // Queued with the guard's report, whose time is its subject.
    let since =
        db.scalar("SELECT json_extract(report, '$.since') FROM Housekeeping WHERE name = 'disk'");
    assert_eq!(outbox(&db)[0][1], format!("disk:{since}").as_str());
    drop(worker);
}
