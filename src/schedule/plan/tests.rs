use super::*;
use crate::clock::Timestamp;
use crate::schedule::{CronExpr, DEFAULT_CATCH_UP, Missed, Overlap, Schedule, Source, parse_zone};

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn schedule(cron: &str, zone: &str) -> Schedule {
    Schedule {
        name: "s".into(),
        job: "j".into(),
        cron: CronExpr::parse(cron).unwrap(),
        zone: parse_zone(zone).unwrap(),
        parameters: Default::default(),
        missed: Missed::Skip,
        max_catch_up: DEFAULT_CATCH_UP,
        overlap: Overlap::Allow,
        enabled: true,
        source: Source::Api,
    }
}

fn run(s: &Schedule, after: &str, now: &str, paused: bool, previous: Previous) -> Plan {
    plan(&PlanInput {
        schedule: s,
        after: ts(after),
        waiting: None,
        now: ts(now),
        paused,
        previous,
    })
}

fn outcomes(p: &Plan) -> Vec<(String, Outcome)> {
    p.decisions
        .iter()
        .map(|d| (d.due.to_text()[11..19].to_string(), d.outcome))
        .collect()
}

use Outcome::*;

#[test]
fn on_time_due_times_are_enqueued_and_the_next_is_known() {
    let s = schedule("*/10 * * * *", "UTC");
    let p = run(
        &s,
        "2027-01-01T00:00:00Z",
        "2027-01-01T00:10:30Z",
        false,
        Previous::Done,
    );
    assert_eq!(outcomes(&p), [("00:10:00".into(), Enqueued)]);
    assert_eq!(p.decisions[0].reason, "on time");
    assert_eq!(p.last_due, Some(ts("2027-01-01T00:10:00Z")));
    assert_eq!(p.next_due, Some(ts("2027-01-01T00:20:00Z")));
    // Nothing due yet: nothing decided.
    let p = run(
        &s,
        "2027-01-01T00:10:00Z",
        "2027-01-01T00:15:00Z",
        false,
        Previous::Done,
    );
    assert!(p.decisions.is_empty());
    assert_eq!(p.last_due, None);
}

#[test]
fn missed_skip_latest_all() {
    let mut s = schedule("0 * * * *", "UTC");
    // Down from 00:00 to 05:00:30: 01..05 are due, 05:00 is on time.
    let (after, now) = ("2027-01-01T00:00:00Z", "2027-01-01T05:00:30Z");
    let p = run(&s, after, now, false, Previous::Done);
    let o: Vec<Outcome> = p.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(
        o,
        [
            SkippedMissed,
            SkippedMissed,
            SkippedMissed,
            SkippedMissed,
            Enqueued
        ]
    );
    // Down until 05:30: none on time, skip runs nothing.
    let now = "2027-01-01T05:30:00Z";
    let p = run(&s, after, now, false, Previous::Done);
    assert!(p.decisions.iter().all(|d| d.outcome == SkippedMissed));
    assert!(
        p.decisions[0].reason.contains("missed by 4 h"),
        "{}",
        p.decisions[0].reason
    );
    s.missed = Missed::Latest;
    let p = run(&s, after, now, false, Previous::Done);
    let o: Vec<Outcome> = p.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(
        o,
        [
            SkippedMissed,
            SkippedMissed,
            SkippedMissed,
            SkippedMissed,
            Enqueued
        ]
    );
    assert!(
        p.decisions[4].reason.starts_with("late by 30 min"),
        "{}",
        p.decisions[4].reason
    );
    s.missed = Missed::All;
    s.max_catch_up = 3;
    let p = run(&s, after, now, false, Previous::Done);
    let o: Vec<Outcome> = p.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(
        o,
        [SkippedMissed, SkippedMissed, Enqueued, Enqueued, Enqueued]
    );
}

#[test]
fn overlap_skip_queue_allow() {
    let mut s = schedule("* * * * *", "UTC");
    let (after, now) = ("2027-01-01T00:00:00Z", "2027-01-01T00:00:59Z");
    // Three on time (00:00:00 is the start, so 00:01.. are not due yet):
    let now2 = "2027-01-01T00:03:10Z";
    s.overlap = Overlap::Skip;
    let p = run(&s, after, now2, false, Previous::Unfinished(7));
    // 00:01 and 00:02 are missed (older than 60 s); 00:03 on time but busy.
    assert_eq!(
        outcomes(&p),
        [
            ("00:01:00".into(), SkippedMissed),
            ("00:02:00".into(), SkippedMissed),
            ("00:03:00".into(), SkippedOverlap)
        ]
    );
    assert!(
        p.decisions[2].reason.contains("run 7"),
        "{}",
        p.decisions[2].reason
    );
    assert!(
        run(&s, after, now, false, Previous::Done)
            .decisions
            .is_empty()
    );
    // With catch-up, overlap applies among the pass's own runs.
    s.missed = Missed::All;
    let p = run(&s, after, now2, false, Previous::Done);
    assert_eq!(
        p.decisions.iter().map(|d| d.outcome).collect::<Vec<_>>(),
        [Enqueued, SkippedOverlap, SkippedOverlap]
    );
    s.overlap = Overlap::Allow;
    let p = run(&s, after, now2, false, Previous::Unfinished(7));
    assert!(p.decisions.iter().all(|d| d.outcome == Enqueued));
    s.overlap = Overlap::Queue;
    let p = run(&s, after, now2, false, Previous::Unfinished(7));
    // 00:01 waits; 00:02 and 00:03 are skipped: one already waits.
    assert_eq!(p.waiting, Some(ts("2027-01-01T00:01:00Z")));
    assert_eq!(
        p.decisions.iter().map(|d| d.outcome).collect::<Vec<_>>(),
        [SkippedOverlap, SkippedOverlap]
    );
    assert!(p.decisions[0].reason.contains("one run already waits"));
    assert_eq!(p.last_due, Some(ts("2027-01-01T00:03:00Z")));
    // Once the previous run finishes, the waiting one runs.
    let p2 = plan(&PlanInput {
        schedule: &s,
        after: ts("2027-01-01T00:03:00Z"),
        waiting: p.waiting,
        now: ts("2027-01-01T00:03:30Z"),
        paused: false,
        previous: Previous::Done,
    });
    assert_eq!(outcomes(&p2), [("00:01:00".into(), Enqueued)]);
    assert_eq!(p2.waiting, None);
}

#[test]
fn paused_skips_everything_and_disabled_has_no_due_times() {
    let mut s = schedule("*/15 * * * *", "UTC");
    let p = run(
        &s,
        "2027-01-01T00:00:00Z",
        "2027-01-01T00:31:00Z",
        true,
        Previous::Done,
    );
    assert_eq!(
        outcomes(&p),
        [
            ("00:15:00".into(), SkippedPaused),
            ("00:30:00".into(), SkippedPaused)
        ]
    );
    s.enabled = false;
    let p = run(
        &s,
        "2027-01-01T00:00:00Z",
        "2027-01-01T00:31:00Z",
        false,
        Previous::Done,
    );
    assert!(p.decisions.is_empty());
    assert_eq!(p.next_due, None);
}

#[test]
fn a_clock_that_went_back_decides_nothing_twice() {
    let s = schedule("*/10 * * * *", "UTC");
    let p = run(
        &s,
        "2027-01-01T01:00:00Z",
        "2027-01-01T00:20:00Z",
        false,
        Previous::Done,
    );
    assert!(p.decisions.is_empty());
    assert_eq!(p.next_due, Some(ts("2027-01-01T01:10:00Z")));
}

#[test]
fn a_huge_gap_is_bounded_to_a_thousand_rows() {
    let mut s = schedule("* * * * * *", "UTC");
    s.missed = Missed::Latest;
    // Two hours of seconds: 7,200 due times.
    let p = run(
        &s,
        "2027-01-01T00:00:00Z",
        "2027-01-01T02:00:00Z",
        false,
        Previous::Done,
    );
    assert_eq!(p.decisions.len(), MAX_ROWS);
    let first = &p.decisions[0];
    assert_eq!(first.outcome, SkippedMissed);
    assert!(
        first
            .reason
            .contains("stands for 6201 due times from 2027-01-01T00:00:01.000Z"),
        "{}",
        first.reason
    );
    let last = p.decisions.last().unwrap();
    assert_eq!(
        (last.due, last.outcome),
        (ts("2027-01-01T02:00:00Z"), Enqueued)
    );
    // Every on-time second (the last 60 s) is enqueued.
    assert_eq!(
        p.decisions.iter().filter(|d| d.outcome == Enqueued).count(),
        61
    );
}
