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
