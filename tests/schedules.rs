//! Schedules end to end: a worker on a driven clock decides each due time
//! once, by the documented policies, and records it in `ScheduleTick` with
//! the run it made. Observed in the SQLite file and through the CLI.

mod common;
mod schedule_support;

use schedule_support::Setup;

const T0: &str = "2027-01-04T00:00:00Z";

#[test]
fn an_on_time_due_time_enqueues_one_run_with_its_schedule_and_due_time() {
    let s = Setup::new(
        "sched-basic",
        T0,
        "[schedules.tick]\njob = \"noop\"\ncron = \"*/10 * * * *\"\n",
    );
    let _w = s.worker("worker.log");
    s.wait_seen("tick");
    s.at("2027-01-04T00:10:05Z");
    s.wait_ticks("tick", 1);
    let ticks = s.ticks("tick");
    assert_eq!(ticks[0].0, "2027-01-04T00:10:00.000Z");
    assert_eq!(ticks[0].1, "ENQUEUED");
    let run = ticks[0].2.expect("the tick names its run");
    let row = s.db.query(&format!(
        "SELECT jobName, triggeredBy, scheduleName, scheduledFor FROM JobRun WHERE id = {run}"
    ));
    assert_eq!(
        row[0],
        ["noop", "schedule", "tick", "2027-01-04T00:10:00.000Z"].map(serde_json::Value::from)
    );
    s.db.wait_status(run, "COMPLETED", schedule_support::WAIT);
}

/// A 6-field expression at seconds granularity, end to end: the CLI lists
/// it and its due times, the worker decides each second due time, and
/// run/pause/resume act on it.
#[test]
fn six_field_cron_through_the_cli_and_the_database() {
    let s = Setup::new(
        "sched-seconds",
        T0,
        "[schedules.fast]\njob = \"noop\"\ncron = \"*/5 * * * * *\"\ntimezone = \"Europe/Berlin\"\n\
         overlap = \"allow\"\n",
    );
    let list = s.ok(&["schedules"]);
    assert!(list.contains("fast"), "{list}");
    assert!(
        list.contains("*/5 * * * * *") && list.contains("Europe/Berlin"),
        "{list}"
    );
    assert!(list.contains("2027-01-04T00:00:05.000Z"), "{list}");
    let show = s.ok(&["schedules", "show", "fast"]);
    assert!(
        show.contains("2027-01-04T00:00:05.000Z  2027-01-04 01:00:05 CET"),
        "{show}"
    );
    assert!(
        show.contains("2027-01-04T00:00:50.000Z"),
        "10 due times: {show}"
    );

    let _w = s.worker("worker.log");
    s.wait_seen("fast");
    for (i, at) in ["00:00:05", "00:00:10", "00:00:15"].iter().enumerate() {
        s.at(&format!("2027-01-04T{at}Z"));
        s.wait_ticks("fast", i + 1);
    }
    let ticks = s.ticks("fast");
    let dues: Vec<&str> = ticks.iter().map(|t| &t.0[11..19]).collect();
    assert_eq!(dues, ["00:00:05", "00:00:10", "00:00:15"]);
    assert!(
        ticks.iter().all(|t| t.1 == "ENQUEUED" && t.2.is_some()),
        "{ticks:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&s.ok(&["schedules", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "fast");
    assert_eq!(json[0]["source"], "file");
    assert_eq!(json[0]["nextDueAt"], "2027-01-04T00:00:20.000Z");
    assert_eq!(json[0]["lastRun"]["dueAt"], "2027-01-04T00:00:15.000Z");

    // Run now: a manual run with the schedule's name, no ledger row.
    let id: i64 = s.ok(&["schedules", "run", "fast"]).trim().parse().unwrap();
    assert_eq!(
        s.db.scalar(&format!(
            "SELECT triggeredBy || ' ' || scheduleName FROM JobRun WHERE id = {id}"
        )),
        "schedule-now fast"
    );
    assert_eq!(s.ticks("fast").len(), 3);

    assert_eq!(
        s.ok(&["schedules", "pause", "fast"]).trim(),
        "schedule fast paused"
    );
    s.at("2027-01-04T00:00:20Z");
    s.wait_ticks("fast", 4);
    assert_eq!(s.ticks("fast")[3].1, "SKIPPED_PAUSED");
    assert_eq!(s.ticks("fast")[3].2, None);
    s.ok(&["schedules", "resume", "fast"]);
    s.at("2027-01-04T00:00:25Z");
    s.wait_ticks("fast", 5);
    assert_eq!(s.ticks("fast")[4].1, "ENQUEUED");
    let show = s.ok(&["schedules", "show", "fast"]);
    assert!(show.contains("SKIPPED_PAUSED"), "{show}");
    assert_eq!(
        s.db.scalar("SELECT group_concat(action) FROM Audit WHERE target = 'schedule fast'"),
        "schedule.run,schedule.pause,schedule.resume"
    );

    // The scheduler's runs (written without triggers) are counted.
    let check = s.ok(&["check"]);
    assert!(check.contains("counters match the rows"), "{check}");

    let (code, err) = s.fails(&["schedules", "show", "nope"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("schedule nope not found"), "{err}");
    let (code, _) = s.fails(&["schedules", "pause", "nope"]);
    assert_eq!(code, 3);
}

/// `check-config` lists each problem of a schedule with its line.
#[test]
fn check_config_reports_schedule_problems_with_their_lines() {
    let s = Setup::new(
        "sched-check",
        T0,
        "[schedules.bad]\njob = \"noop\"\ncron = \"0 24 * * *\"\ntimezone = \"America/New_Yrok\"\n",
    );
    let out = s.cmd(&["check-config"]).output().expect("run check-config");
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Line numbers count the test's job types above the schedule.
    assert!(
        text.contains("schedules.bad.cron: '0 24 * * *': field 2 at column 3: hour '24'"),
        "{text}"
    );
    assert!(
        text.contains(
            "schedules.bad.timezone: unknown time zone 'America/New_Yrok' (did you mean 'America/New_York'?)"
        ),
        "{text}"
    );
    let (code, err) = s.fails(&["worker"]);
    assert_ne!(code, 0);
    assert!(err.contains("schedules.bad.cron"), "{err}");
}
