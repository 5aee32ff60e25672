//! One ticker for the server's periodic tasks (Oban's plugins, Faktory's
//! tasks): every interval it runs each [`Task`] in list order, keeps what
//! each reported (its counts, its last error) where the API can show it,
//! and stops when its stop channel is dropped. It also notices that its own
//! process was paused, and tells the tasks, so none declares a worker dead
//! because the server itself was asleep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::Serialize;

use crate::clock::Timestamp;
use crate::error::Result;

/// What a task changed in one run, by name ("workersDeclaredDead": 1).
/// Empty when it found nothing to do.
pub type Counts = BTreeMap<&'static str, u64>;

/// What every task is told at a tick.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// The time of this tick.
    pub now: Timestamp,
    /// The server was paused a moment ago: every heartbeat looks older
    /// than it is, so nobody may be declared dead on this tick.
    pub hold: bool,
}

/// One named piece of periodic work. A task reads first, takes the write
/// lock only when it has something to change, does it in one short
/// transaction, and returns what it changed.
pub trait Task: Send {
    /// A short stable name ("stale-workers"), shown in the API.
    fn name(&self) -> &'static str;
    /// One run.
    fn run(&mut self, tick: &Tick) -> Result<Counts>;
}

/// What one task has done since the server started.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    pub name: &'static str,
    /// Ticks it ran on.
    pub runs: u64,
    /// When it last ran.
    pub last_run_at: Option<String>,
    /// What its last run changed.
    pub last: Counts,
    /// What it has changed in total.
    pub totals: Counts,
    /// Its last run's error, if that run failed.
    pub last_error: Option<String>,
}

/// The reports of every task, shared between the ticker and the API.
#[derive(Clone, Default)]
pub struct Reports(Arc<Mutex<Vec<TaskReport>>>);

impl Reports {
    /// A copy of every task's report, in list order.
    pub fn snapshot(&self) -> Vec<TaskReport> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn record(&self, i: usize, at: Timestamp, outcome: &Result<Counts>) {
        let Ok(mut all) = self.0.lock() else { return };
        let Some(r) = all.get_mut(i) else { return };
        r.runs += 1;
        r.last_run_at = Some(at.to_text());
        match outcome {
            Ok(counts) => {
                for (k, n) in counts {
                    *r.totals.entry(k).or_default() += n;
                }
                r.last = counts.clone();
                r.last_error = None;
            }
            Err(e) => {
                r.last = Counts::new();
                r.last_error = Some(e.to_string());
            }
        }
    }
}

/// The tasks and their shared reports.
pub struct Ticker {
    every: Duration,
    stale_after: Duration,
    tasks: Vec<Box<dyn Task>>,
    reports: Reports,
}

/// A tick later than its interval by more than this means the process was
/// paused (SIGSTOP, a debugger) rather than slow.
const PAUSE_SLACK: Duration = Duration::from_secs(1);

impl Ticker {
    /// A ticker that runs `tasks` every `every`; after a pause of its own
    /// process it holds everyone back for one `stale_after` window.
    pub fn new(every: Duration, stale_after: Duration, tasks: Vec<Box<dyn Task>>) -> Ticker {
        let reports = tasks
            .iter()
            .map(|t| TaskReport {
                name: t.name(),
                ..TaskReport::default()
            })
            .collect();
        Ticker {
            every,
            stale_after,
            tasks,
            reports: Reports(Arc::new(Mutex::new(reports))),
        }
    }

    /// The handle the API reads the reports through.
    pub fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// Ticks until `stop` is dropped (or sent to).
    pub fn run(mut self, stop: &Receiver<()>) {
        let mut pause = PauseWatch::new(self.every, self.stale_after, Instant::now());
        loop {
            match stop.recv_timeout(self.every) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let (paused, hold) = pause.tick(Instant::now());
            if let Some(p) = paused {
                log::warn!(
                    "maintenance: this server was paused for about {:.1} s; workers get {:.1} s \
                     to heartbeat before any is declared dead",
                    p.as_secs_f64(),
                    self.stale_after.as_secs_f64()
                );
            }
            self.tick_once(&Tick {
                now: Timestamp::now(),
                hold,
            });
        }
    }

    /// Runs every task once, in order, and records what each reported.
    pub fn tick_once(&mut self, tick: &Tick) {
        for (i, task) in self.tasks.iter_mut().enumerate() {
            let outcome = task.run(tick);
            match &outcome {
                Ok(c) => log::debug!("maintenance: {}: {c:?}", task.name()),
                Err(e) => log::warn!("maintenance: {}: {e}", task.name()),
            }
            self.reports.record(i, tick.now, &outcome);
        }
    }
}

/// Notices that the ticker's own process was paused, from the monotonic
/// clock (which runs on while a process is stopped).
struct PauseWatch {
    every: Duration,
    stale_after: Duration,
    last: Instant,
    hold_until: Option<Instant>,
}

impl PauseWatch {
    fn new(every: Duration, stale_after: Duration, now: Instant) -> PauseWatch {
        PauseWatch {
            every,
            stale_after,
            last: now,
            hold_until: None,
        }
    }

    /// One tick at `now`: the pause just noticed, if any, and whether
    /// nobody may be declared dead now. The gap is measured from the last
    /// tick's start, so a pause during a tick is noticed too (a tick that
    /// is merely slow, waiting for a lock, counts as one: holding back for
    /// one window is harmless).
    fn tick(&mut self, now: Instant) -> (Option<Duration>, bool) {
        let gap = now.saturating_duration_since(self.last);
        self.last = now;
        let late = gap.saturating_sub(self.every);
        let paused = (late > PAUSE_SLACK).then_some(late);
        if paused.is_some() {
            self.hold_until = Some(now + self.stale_after);
        }
        let holding = self.hold_until.is_some_and(|t| now < t);
        if !holding {
            self.hold_until = None;
        }
        (paused, holding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(100);
    const STALE_AFTER: Duration = Duration::from_secs(3);

    #[test]
    fn ticks_on_time_hold_nobody_back() {
        let t0 = Instant::now();
        let mut w = PauseWatch::new(EVERY, STALE_AFTER, t0);
        for i in 1..50 {
            let at = t0 + Duration::from_millis(105 * i);
            assert_eq!(w.tick(at), (None, false));
        }
    }

    #[test]
    fn a_pause_holds_everyone_back_for_one_stale_after_window() {
        let t0 = Instant::now();
        let mut w = PauseWatch::new(EVERY, STALE_AFTER, t0);
        let resumed = t0 + Duration::from_secs(45);
        let (paused, holding) = w.tick(resumed);
        assert!(paused.is_some_and(|p| p > Duration::from_secs(44)));
        assert!(holding);
        let within = resumed + Duration::from_millis(2_900);
        assert_eq!(w.tick(within), (Some(Duration::from_millis(2_800)), true));
        // A second late tick restarts the window from itself.
        let mut w = PauseWatch::new(EVERY, STALE_AFTER, t0);
        w.tick(resumed);
        let mut at = resumed;
        for _ in 0..29 {
            at += Duration::from_millis(100);
            assert_eq!(w.tick(at), (None, true));
        }
        at += Duration::from_millis(200);
        assert_eq!(w.tick(at), (None, false));
    }

    struct Fixed(&'static str, Result<Counts>);
    impl Task for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn run(&mut self, _tick: &Tick) -> Result<Counts> {
            match &self.1 {
                Ok(c) => Ok(c.clone()),
                Err(e) => Err(crate::error::Error::Internal(e.to_string())),
            }
        }
    }

    #[test]
    fn every_task_reports_its_counts_in_list_order() {
        let one = Counts::from([("workersDeclaredDead", 2)]);
        let tasks: Vec<Box<dyn Task>> = vec![
            Box::new(Fixed("a", Ok(one))),
            Box::new(Fixed("b", Err(crate::error::Error::Internal("no".into())))),
        ];
        let mut t = Ticker::new(EVERY, STALE_AFTER, tasks);
        let tick = Tick {
            now: Timestamp::now(),
            hold: false,
        };
        t.tick_once(&tick);
        t.tick_once(&tick);
        let r = t.reports().snapshot();
        assert_eq!(r.iter().map(|r| r.name).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r[0].runs, 2);
        assert_eq!(r[0].totals["workersDeclaredDead"], 4);
        assert_eq!(r[0].last["workersDeclaredDead"], 2);
        assert!(r[0].last_error.is_none());
        assert_eq!(r[1].runs, 2);
        assert!(r[1].last_error.as_deref().is_some_and(|e| e.contains("no")));
    }
}
