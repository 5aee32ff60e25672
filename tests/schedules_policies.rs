//! The documented policies end to end, on a driven clock: what becomes of
//! due times missed while the worker was down (skip, latest, all with its
//! cap), of due times while the previous run is unfinished (skip, queue,
//! allow), and of due times while paused. Read back from `ScheduleTick`.

mod common;
mod schedule_support;

use schedule_support::{Setup, WAIT, stop_worker};

const T0: &str = "2027-01-04T00:00:00Z";

#[test]
fn missed_due_times_after_downtime_follow_skip_latest_and_all() {
    let hourly = |name: &str, missed: &str| {
        format!(
            "[schedules.{name}]\njob = \"noop\"\ncron = \"0 * * * *\"\nmissed = \"{missed}\"\n\
             overlap = \"allow\"\nmax_catch_up = 3\n"
        )
    };
    let conf = [
        hourly("skip", "skip"),
        hourly("latest", "latest"),
        hourly("all", "all"),
    ]
    .concat();
    let s = Setup::new("sched-missed", T0, &conf);
    let w = s.worker("worker-1.log");
    for n in ["skip", "latest", "all"] {
        s.wait_seen(n);
    }
    stop_worker(w);
    // Down for five and a half hours: 01:00 .. 05:00 were due, none on time.
    s.at("2027-01-04T05:30:00Z");
    let _w = s.worker("worker-2.log");
    for n in ["skip", "latest", "all"] {
        s.wait_ticks(n, 5);
    }
    let m = "SKIPPED_MISSED";
    let e = "ENQUEUED";
    assert_eq!(s.outcomes("skip"), [m, m, m, m, m]);
    assert_eq!(s.outcomes("latest"), [m, m, m, m, e]);
    assert_eq!(
        s.outcomes("all"),
        [m, m, e, e, e],
        "the 3 most recent (max_catch_up)"
    );
    let dues: Vec<String> = s.ticks("all").into_iter().map(|t| t.0).collect();
    assert_eq!(dues[0], "2027-01-04T01:00:00.000Z");
    assert_eq!(dues[4], "2027-01-04T05:00:00.000Z");
    // Each enqueued row names a run that names its due time.
    for (due, outcome, run) in s.ticks("all") {
        if outcome == e {
            let run = run.expect("an enqueued row names its run");
            assert_eq!(
                s.db.scalar(&format!("SELECT scheduledFor FROM JobRun WHERE id = {run}")),
                due
            );
        } else {
            assert_eq!(run, None);
        }
    }
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "4");
    let reason = s.db.scalar(
        "SELECT reason FROM ScheduleTick WHERE scheduleName = 'skip' ORDER BY dueAt LIMIT 1",
    );
    assert!(reason.starts_with("missed by 4 h 30 min"), "{reason}");
}

#[test]
fn overlap_skip_queue_and_allow_while_the_previous_run_is_unfinished() {
    let every_minute = |name: &str, overlap: &str| {
        format!(
            "[schedules.{name}]\njob = \"gate\"\ncron = \"* * * * *\"\noverlap = \"{overlap}\"\n\
             parameters = {{ gate = \"{{gate}}\" }}\n"
        )
    };
    let conf = [
        every_minute("skip", "skip"),
        every_minute("queue", "queue"),
        every_minute("allow", "allow"),
    ]
    .concat();
    let s = Setup::new("sched-overlap", T0, &conf);
    let _w = s.worker("worker.log");
    for n in ["skip", "queue", "allow"] {
        s.wait_seen(n);
    }
    // 00:01: every schedule starts a run, which waits for the gate.
    s.at("2027-01-04T00:01:01Z");
    for n in ["skip", "queue", "allow"] {
        s.wait_ticks(n, 1);
    }
    // 00:02 and 00:03 while those runs are unfinished.
    s.at("2027-01-04T00:02:01Z");
    s.wait_ticks("allow", 2);
    s.at("2027-01-04T00:03:01Z");
    s.wait_ticks("allow", 3);
    let (e, o) = ("ENQUEUED", "SKIPPED_OVERLAP");
    assert_eq!(s.outcomes("skip"), [e, o, o]);
    assert_eq!(s.outcomes("allow"), [e, e, e]);
    // queue: 00:02 waits undecided; 00:03 is skipped, one already waits.
    assert_eq!(s.outcomes("queue"), [e, o]);
    assert_eq!(s.ticks("queue")[1].0, "2027-01-04T00:03:00.000Z");
    let reason = s.db.scalar(
        "SELECT reason FROM ScheduleTick WHERE scheduleName = 'queue' AND outcome = 'SKIPPED_OVERLAP'",
    );
    assert!(reason.contains("one run already waits"), "{reason}");
    assert_eq!(
        s.db.scalar("SELECT waitingDueAt FROM ScheduleState WHERE scheduleName = 'queue'"),
        "2027-01-04T00:02:00.000Z"
    );

    // The previous run finishes: the waiting due time runs, once.
    s.open_gate();
    let first = s.ticks("queue")[0].2.unwrap();
    s.db.wait_status(first, "COMPLETED", WAIT);
    s.clock.advance(3_000);
    s.wait_ticks("queue", 3);
    let q = s.ticks("queue");
    assert_eq!(
        q.iter()
            .map(|t| (t.0.as_str(), t.1.as_str()))
            .collect::<Vec<_>>(),
        [
            ("2027-01-04T00:01:00.000Z", e),
            ("2027-01-04T00:02:00.000Z", e),
            ("2027-01-04T00:03:00.000Z", o),
        ]
    );
    let waited = q[1].2.expect("the waiting due time made a run");
    assert_eq!(
        s.db.scalar(&format!(
            "SELECT scheduledFor FROM JobRun WHERE id = {waited}"
        )),
        "2027-01-04T00:02:00.000Z"
    );
    assert_eq!(
        s.db.scalar("SELECT count(*) FROM ScheduleState WHERE waitingDueAt IS NOT NULL"),
        "0"
    );
}

#[test]
fn a_paused_schedule_records_each_due_time_as_skipped_paused() {
    let s = Setup::new(
        "sched-paused",
        T0,
        "[schedules.p]\njob = \"noop\"\ncron = \"*/15 * * * *\"\noverlap = \"allow\"\n",
    );
    // Paused before the worker ever ran it: due times count from the pause.
    s.ok(&["schedules", "pause", "p"]);
    let _w = s.worker("worker.log");
    s.at("2027-01-04T00:45:10Z");
    s.wait_ticks("p", 3);
    // While paused every due time is SKIPPED_PAUSED, missed or on time.
    assert_eq!(s.outcomes("p"), ["SKIPPED_PAUSED"; 3]);
    assert_eq!(s.db.scalar("SELECT count(*) FROM JobRun"), "0");
    s.ok(&["schedules", "resume", "p"]);
    s.at("2027-01-04T01:00:05Z");
    s.wait_ticks("p", 4);
    assert_eq!(s.outcomes("p")[3], "ENQUEUED");
}

/// A schedule turned off and on again starts counting from when it was
/// turned on: the due times while it was off are not backfilled (not even
/// by `missed = "latest"`).
#[test]
fn a_schedule_enabled_again_does_not_backfill() {
    let conf = |enabled: bool| {
        format!(
            "[schedules.s]\njob = \"noop\"\ncron = \"*/10 * * * *\"\nmissed = \"latest\"\n\
             overlap = \"allow\"\nenabled = {enabled}\n"
        )
    };
    let s = Setup::new("sched-reenabled", T0, &conf(false));
    let w = s.worker("worker-1.log");
    s.wait_seen("s");
    assert_eq!(
        s.db.scalar("SELECT enabled FROM ScheduleState WHERE scheduleName = 's'"),
        "0"
    );
    stop_worker(w);
    let toml = s.db.dir.join("jobmgr.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("enabled = false", "enabled = true")).unwrap();
    s.at("2027-01-04T02:05:00Z");
    let _w = s.worker("worker-2.log");
    schedule_support::wait_log(&_w, "scheduler: first pass done");
    assert_eq!(s.ticks("s").len(), 0, "02:00 was due while it was off");
    s.at("2027-01-04T02:10:01Z");
    s.wait_ticks("s", 1);
    let t = s.ticks("s");
    assert_eq!(
        (t[0].0.as_str(), t[0].1.as_str()),
        ("2027-01-04T02:10:00.000Z", "ENQUEUED")
    );
}
