use super::*;
use crate::store::{Store, TestFile};

fn write(due: &[(&str, Outcome)]) -> ScheduleWrite {
    ScheduleWrite {
        name: "s".into(),
        job: "noop".into(),
        parameters: "{}".into(),
        since: "2027-01-01T00:00:00.000Z".into(),
        ticks: due
            .iter()
            .map(|(d, o)| TickWrite {
                due: d.to_string(),
                outcome: *o,
                reason: "r".into(),
            })
            .collect(),
        last_due: due.last().map(|(d, _)| d.to_string()),
        waiting: None,
        enabled: true,
        restart: false,
    }
}

/// A pass recorded twice (the first committed, then the worker died
/// before it knew) records and enqueues nothing the second time.
#[test]
fn recording_the_same_due_times_again_changes_nothing() {
    let file = TestFile::new("schedule-record");
    let store = Store::open(&file.db()).unwrap();
    let w = vec![write(&[
        ("2027-01-01T00:01:00.000Z", Outcome::SkippedMissed),
        ("2027-01-01T00:02:00.000Z", Outcome::Enqueued),
    ])];
    let now = "2027-01-01T00:02:01.000Z";
    let first = store.write("t", |tx| record(tx, &w, now, "{}")).unwrap();
    assert_eq!((first.ticks, first.runs.len()), (2, 1));
    let again = store.write("t", |tx| record(tx, &w, now, "{}")).unwrap();
    assert_eq!(again, Recorded::default());
    let conn = store.conn().unwrap();
    let st = state(&conn, "s").unwrap().unwrap();
    assert_eq!(st.last_due.as_deref(), Some("2027-01-01T00:02:00.000Z"));
    assert_eq!(st.last_run.map(|r| r.id), Some(first.runs[0]));
    // An older last due time never moves the cursor back.
    let old = vec![write(&[(
        "2027-01-01T00:00:30.000Z",
        Outcome::SkippedPaused,
    )])];
    store.write("t", |tx| record(tx, &old, now, "{}")).unwrap();
    let st = state(&conn, "s").unwrap().unwrap();
    assert_eq!(st.last_due.as_deref(), Some("2027-01-01T00:02:00.000Z"));
    assert_eq!(ticks(&conn, "s", 10).unwrap().len(), 3);
}
