//! The `schedules` scenario: what one scheduler decision pass costs with
//! 10,000 schedules (fewer with a smaller `--n`), measured on the planner
//! the worker's scheduler thread runs, against a real database file.

use std::time::{Duration, Instant};

use super::jobtypes::registry;
use super::scenarios::Ctx;
use super::{Measurement, TempDir, percentile};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::schedule::pass::Planner;
use crate::schedule::{self, CronExpr, Missed, Overlap, Schedule, Source};
use crate::store::schedule_edits::{self, NewSchedule};
use crate::store::{Store, schedules};

/// Schedules the scenario makes (the figure).
const SCHEDULES: usize = 10_000;
/// Idle passes measured; the median is reported.
const IDLE_PASSES: usize = 50;
/// The goal for a pass with nothing due.
const IDLE_GOAL: Duration = Duration::from_millis(5);

impl Ctx {
    pub(super) fn schedules(&mut self) -> Result<Vec<Measurement>> {
        let n = self.opts.n.min(SCHEDULES);
        let dir = TempDir::beside(&self.opts.db, "schedules")?;
        let store = Store::open(&dir.db())?;
        self.note_sync(&store)?;
        let start = Timestamp::parse("2030-01-07T00:00:00Z")
            .ok_or_else(|| Error::Internal("bench start time".into()))?;
        make_schedules(&store, n, start)?;
        let mut planner = Planner::new(registry(&self.done, &self.started.0));
        let conn = store.conn()?;
        let meta = crate::manager::enqueue_metadata();

        // The first pass reads and parses every schedule.
        let t = Instant::now();
        let first = planner.pass(&conn, start.plus_ms(1_000))?;
        let cold = Measurement::new("schedules-first-pass", planner.known(), 1, t.elapsed());
        debug_assert!(first.writes.is_empty());

        // Passes with nothing due: what the scheduler does every 2 s.
        let mut idle = Vec::with_capacity(IDLE_PASSES);
        for i in 0..IDLE_PASSES {
            let t = Instant::now();
            let p = planner.pass(&conn, start.plus_ms(2_000 + i as i64 * 10))?;
            idle.push(t.elapsed().as_secs_f64() * 1000.0);
            debug_assert!(p.writes.is_empty());
        }
        idle.sort_by(f64::total_cmp);
        let median = percentile(&idle, 50.0).unwrap_or(0.0);
        let mut quiet = Measurement::new(
            "schedules-idle-pass",
            n,
            1,
            Duration::from_secs_f64(median / 1000.0),
        );
        quiet.note = Some(format!(
            "median of {IDLE_PASSES} passes with nothing due: {median:.3} ms (goal < {} ms)",
            IDLE_GOAL.as_millis()
        ));

        // One minute in: the schedules due at minute 1 are decided and
        // recorded with their runs, in one transaction.
        let minute = decide(&store, &conn, &mut planner, start.plus_ms(61_000), &meta)?;
        let mut due = Measurement::new("schedules-due-pass", minute.0, 1, minute.1);
        due.note = Some(format!("{} due times decided and recorded", minute.0));

        // An hour later every schedule has due times to decide (missed).
        let hour = decide(&store, &conn, &mut planner, start.plus_ms(3_661_000), &meta)?;
        let mut all = Measurement::new("schedules-all-due-pass", hour.0, 1, hour.1);
        all.note = Some(format!(
            "{} due times of {n} schedules decided and recorded",
            hour.0
        ));
        Ok(vec![cold, quiet, due, all])
    }
}

/// `n` schedules of `bench-noop`, each hourly at minute `i % 60`.
fn make_schedules(store: &Store, n: usize, start: Timestamp) -> Result<()> {
    let now = start.to_text();
    store.write("make bench schedules", |tx| {
        for i in 0..n {
            let cron = CronExpr::parse(&format!("{} * * * *", i % 60))
                .map_err(|e| Error::Internal(e.to_string()))?;
            let s = Schedule {
                name: format!("bench-{i:05}"),
                job: "bench-noop".into(),
                cron,
                zone: schedule::Tz::UTC,
                parameters: Default::default(),
                missed: Missed::Skip,
                max_catch_up: schedule::DEFAULT_CATCH_UP,
                overlap: Overlap::Allow,
                enabled: true,
                source: Source::Api,
            };
            let row = NewSchedule {
                schedule: &s,
                parameters: "{}".into(),
            };
            schedule_edits::insert(tx, &row, &now)?;
        }
        Ok(())
    })
}

/// One pass at `now` and the write of what it decided; (due times, time).
fn decide(
    store: &Store,
    conn: &crate::store::Connection,
    planner: &mut Planner,
    now: Timestamp,
    meta: &str,
) -> Result<(usize, Duration)> {
    let t = Instant::now();
    let p = planner.pass(conn, now)?;
    let decided = p.writes.iter().map(|w| w.ticks.len()).sum();
    let at = now.to_text();
    store.write("record bench decisions", |tx| {
        schedules::record(tx, &p.writes, &at, meta)
    })?;
    planner.wrote();
    Ok((decided, t.elapsed()))
}
