use super::*;
use crate::clock::Timestamp;

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn texts(v: &[Timestamp]) -> Vec<String> {
    v.iter().map(|t| t.to_text()).collect()
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

#[test]
fn five_and_six_fields_and_shorthands_parse() {
    let c = CronExpr::parse("  30 2 * * * ").unwrap();
    assert_eq!(c.as_str(), "30 2 * * *");
    assert!(!c.has_seconds());
    assert!(CronExpr::parse("*/5 * * * * *").unwrap().has_seconds());
    assert!(CronExpr::parse("@daily").is_ok());
    assert!(CronExpr::parse("@HOURLY").is_ok());
    assert!(CronExpr::parse("0 9 * * MON-FRI").is_ok());
}

#[test]
fn cron_errors_name_the_field_and_column() {
    let e = CronExpr::parse("30 25 * * *").unwrap_err();
    assert_eq!((e.field, e.column), (Some(2), 4), "{e}");
    assert!(
        e.to_string().starts_with("field 2 at column 4: hour '25'"),
        "{e}"
    );
    let e = CronExpr::parse("* * * * * x").unwrap_err();
    assert_eq!((e.field, e.column), (Some(6), 11), "{e}");
    assert!(e.to_string().contains("day of week 'x'"), "{e}");
    let e = CronExpr::parse("61 * * * * *").unwrap_err();
    assert!(e.to_string().contains("second '61'"), "{e}");
    let e = CronExpr::parse("* * *").unwrap_err();
    assert_eq!(e.field, None);
    assert!(e.to_string().contains("has 3 fields"), "{e}");
    assert!(
        CronExpr::parse("0 0 * * * * 2030")
            .unwrap_err()
            .to_string()
            .contains("has 7 fields")
    );
    let e = CronExpr::parse("@dialy").unwrap_err();
    assert!(e.to_string().contains("did you mean '@daily'?"), "{e}");
    assert!(CronExpr::parse("").is_err());
}

#[test]
fn unknown_zones_get_a_suggestion() {
    assert!(parse_zone("Europe/Berlin").is_ok());
    assert_eq!(
        parse_zone("europe/berlin").unwrap_err(),
        "unknown time zone 'europe/berlin' (did you mean 'Europe/Berlin'?)"
    );
    assert!(
        parse_zone("Europe/Berln")
            .unwrap_err()
            .contains("did you mean 'Europe/Berlin'?")
    );
    assert!(
        parse_zone("Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone")
    );
}

#[test]
fn due_times_are_computed_in_the_zone() {
    let s = schedule("30 2 * * *", "Europe/Berlin");
    // 02:30 CET is 01:30 UTC.
    let got = s.cron.upcoming(ts("2027-01-10T00:00:00Z"), s.zone, 2);
    assert_eq!(
        texts(&got),
        ["2027-01-10T01:30:00.000Z", "2027-01-11T01:30:00.000Z"]
    );
    assert_eq!(local_text(got[0], s.zone), "2027-01-10 02:30:00 CET");
}

#[test]
fn berlin_spring_gap_runs_at_the_first_instant_after_it() {
    // 2027-03-28: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist.
    let s = schedule("30 2 * * *", "Europe/Berlin");
    let got = s.cron.upcoming(ts("2027-03-27T12:00:00Z"), s.zone, 3);
    assert_eq!(
        texts(&got),
        [
            "2027-03-28T01:00:00.000Z", // 03:00 CEST
            "2027-03-29T00:30:00.000Z", // 02:30 CEST
            "2027-03-30T00:30:00.000Z",
        ]
    );
}

#[test]
fn berlin_autumn_repeat_runs_once() {
    // 2027-10-31: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
    let s = schedule("30 2 * * *", "Europe/Berlin");
    let got = s.cron.upcoming(ts("2027-10-30T12:00:00Z"), s.zone, 2);
    assert_eq!(
        texts(&got),
        ["2027-10-31T00:30:00.000Z", "2027-11-01T01:30:00.000Z"]
    );
    // An interval expression too: the repeated half-hours are not run again.
    let s = schedule("*/30 * * * *", "Europe/Berlin");
    let got = s.cron.upcoming(ts("2027-10-30T23:45:00Z"), s.zone, 5);
    assert_eq!(
        texts(&got),
        [
            "2027-10-31T00:00:00.000Z", // 02:00 CEST
            "2027-10-31T00:30:00.000Z", // 02:30 CEST
            // 02:00 and 02:30 CET (01:00, 01:30 UTC) are repeats.
            "2027-10-31T02:00:00.000Z", // 03:00 CET
            "2027-10-31T02:30:00.000Z",
            "2027-10-31T03:00:00.000Z",
        ]
    );
}

#[test]
fn new_york_gap_and_repeat() {
    // 2027-03-14: 02:00 EST becomes 03:00 EDT.
    let s = schedule("30 2 * * *", "America/New_York");
    let got = s.cron.upcoming(ts("2027-03-13T12:00:00Z"), s.zone, 2);
    assert_eq!(
        texts(&got),
        ["2027-03-14T07:00:00.000Z", "2027-03-15T06:30:00.000Z"]
    );
    // 2027-11-07: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice.
    let s = schedule("30 1 * * *", "America/New_York");
    let got = s.cron.upcoming(ts("2027-11-06T12:00:00Z"), s.zone, 2);
    assert_eq!(
        texts(&got),
        ["2027-11-07T05:30:00.000Z", "2027-11-08T06:30:00.000Z"]
    );
}

#[test]
fn names_are_checked() {
    assert!(check_name("nightly-backup.v2").is_ok());
    assert!(check_name("").is_err());
    assert!(check_name("-x").is_err());
    assert!(check_name("a b").is_err());
    assert!(check_name(&"x".repeat(65)).is_err());
    assert!(check_name("preview").unwrap_err().contains("reserved"));
}

#[test]
fn interval_times_inside_a_gap_run_once_after_it() {
    // 02:00 .. 02:50 CET do not exist on 2027-03-28: one due time at 03:00 CEST.
    let s = schedule("*/10 * * * *", "Europe/Berlin");
    let got = s.cron.upcoming(ts("2027-03-28T00:45:00Z"), s.zone, 3);
    assert_eq!(
        texts(&got),
        [
            "2027-03-28T00:50:00.000Z", // 01:50 CET
            "2027-03-28T01:00:00.000Z", // 03:00 CEST
            "2027-03-28T01:10:00.000Z", // 03:10 CEST
        ]
    );
}

#[test]
fn an_expression_that_never_matches_is_refused_by_the_checks() {
    let s = schedule("0 0 30 2 *", "UTC");
    assert_eq!(
        check_reachable(&s.cron, s.zone).unwrap_err(),
        "'0 0 30 2 *' never comes due (no such date)"
    );
    assert!(check_reachable(&schedule("@daily", "UTC").cron, s.zone).is_ok());
}
