//! Daylight saving end to end, in Europe/Berlin and America/New_York: a
//! local time inside the spring gap runs at the first instant after it, a
//! repeated autumn local time runs once. A minutely UTC schedule beside
//! them shows how far the scheduler has looked.

mod common;
mod schedule_support;

use schedule_support::Setup;

fn conf() -> String {
    let daily = |name: &str, cron: &str, zone: &str| {
        format!(
            "[schedules.{name}]\njob = \"noop\"\ncron = \"{cron}\"\ntimezone = \"{zone}\"\n\
             overlap = \"allow\"\n"
        )
    };
    [
        daily("berlin", "30 2 * * *", "Europe/Berlin"),
        daily("newyork", "30 2 * * *", "America/New_York"),
        daily("newyork-1", "30 1 * * *", "America/New_York"),
        daily("berlin-halfhours", "0,30 * * * *", "Europe/Berlin"),
        "[schedules.sentinel]\njob = \"noop\"\ncron = \"* * * * *\"\noverlap = \"allow\"\n"
            .to_string(),
    ]
    .concat()
}

/// Moves the clock to `at` and waits until the sentinel's due time at
/// `at`'s minute is decided: the scheduler has seen that moment.
fn reach(s: &Setup, at: &str) {
    s.at(at);
    let minute = format!("{}:00.000Z", &at[..16]);
    let seen = || {
        s.db.scalar(&format!(
            "SELECT count(*) FROM ScheduleTick WHERE scheduleName = 'sentinel' AND dueAt = '{minute}'"
        )) == "1"
    };
    if !common::poll_until(schedule_support::WAIT, seen) {
        panic!("the scheduler never reached {at}\n{}", s.db.log_tails());
    }
}

fn decided(s: &Setup, name: &str) -> Vec<(String, String)> {
    s.ticks(name).into_iter().map(|t| (t.0, t.1)).collect()
}

fn e(due: &str) -> (String, String) {
    (due.to_string(), "ENQUEUED".to_string())
}

#[test]
fn spring_gaps_run_at_the_first_instant_after_them() {
    let s = Setup::new("sched-dst-spring", "2027-03-14T05:00:00Z", &conf());
    let _w = s.worker("worker.log");
    s.wait_seen("sentinel");
    // New York, 2027-03-14: 02:00 EST becomes 03:00 EDT (07:00 UTC).
    reach(&s, "2027-03-14T07:00:05Z");
    assert_eq!(decided(&s, "newyork"), [e("2027-03-14T07:00:00.000Z")]);
    reach(&s, "2027-03-15T06:30:05Z");
    assert_eq!(
        decided(&s, "newyork").last(),
        Some(&e("2027-03-15T06:30:00.000Z")),
        "02:30 EDT the next day"
    );
    // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    reach(&s, "2027-03-28T01:00:05Z");
    assert_eq!(
        decided(&s, "berlin").last(),
        Some(&e("2027-03-28T01:00:00.000Z"))
    );
    reach(&s, "2027-03-29T00:30:05Z");
    assert_eq!(
        decided(&s, "berlin").last(),
        Some(&e("2027-03-29T00:30:00.000Z"))
    );
}

#[test]
fn repeated_autumn_times_run_once() {
    let s = Setup::new("sched-dst-autumn", "2027-10-30T12:00:00Z", &conf());
    let _w = s.worker("worker.log");
    s.wait_seen("sentinel");
    // Berlin, 2027-10-31: 02:30 CEST (00:30 UTC), then 02:30 CET (01:30 UTC).
    reach(&s, "2027-10-31T00:30:05Z");
    assert_eq!(decided(&s, "berlin"), [e("2027-10-31T00:30:00.000Z")]);
    reach(&s, "2027-10-31T01:30:05Z");
    reach(&s, "2027-10-31T01:31:05Z");
    assert_eq!(decided(&s, "berlin"), [e("2027-10-31T00:30:00.000Z")]);
    // An interval expression too: 02:00 and 02:30 CET are repeats.
    reach(&s, "2027-10-31T02:00:05Z");
    let halves: Vec<String> = decided(&s, "berlin-halfhours")
        .into_iter()
        .map(|t| t.0)
        .filter(|d| d.as_str() >= "2027-10-31T00:00:00.000Z")
        .collect();
    assert_eq!(
        halves,
        [
            "2027-10-31T00:00:00.000Z",
            "2027-10-31T00:30:00.000Z",
            "2027-10-31T02:00:00.000Z"
        ]
    );
    // New York, 2027-11-07: 01:30 EDT (05:30 UTC), then 01:30 EST (06:30 UTC).
    reach(&s, "2027-11-07T05:30:05Z");
    assert_eq!(
        decided(&s, "newyork-1").last(),
        Some(&e("2027-11-07T05:30:00.000Z"))
    );
    let before = decided(&s, "newyork-1").len();
    reach(&s, "2027-11-07T06:30:05Z");
    reach(&s, "2027-11-07T06:31:05Z");
    assert_eq!(
        decided(&s, "newyork-1").len(),
        before,
        "01:30 EST is a repeat"
    );
    reach(&s, "2027-11-08T06:30:05Z");
    assert_eq!(
        decided(&s, "newyork-1").last(),
        Some(&e("2027-11-08T06:30:00.000Z"))
    );
}
