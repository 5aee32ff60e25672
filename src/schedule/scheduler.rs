//! The scheduler thread of the worker, the single process by design (so no
//! leader election). It sleeps until the process clock reaches the next
//! due time, or at most [`WAKE_MS`] of real time so that schedules edited
//! through the API apply without a restart; then it plans every schedule ([`Planner`]) on
//! a read-only connection and sends the decisions to the writer thread as
//! one write: ledger rows, runs and states in one transaction, so a crash
//! at any moment neither loses a due time nor enqueues it twice.
//!
//! It compares the wall clock with the monotonic one at every wake: a
//! difference of more than [`JUMP_MS`] is a stepped clock or a host that
//! slept, logged as a warning; the same rules then decide the due times
//! the jump passed over (missed) or returned to (already decided, so never
//! again).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};

use super::pass::Planner;
use crate::clock::{self, Timestamp};
use crate::context::{JobWrite, Msg};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::store::{Store, schedules};

/// The longest the scheduler sleeps (in real time) before it reads the
/// schedules again.
pub const WAKE_MS: i64 = 2_000;
/// How often a sleeping scheduler looks at the clock.
const LOOK: Duration = Duration::from_millis(200);
/// A wall clock that moved this much more or less than the monotonic one
/// between two wakes has jumped.
pub const JUMP_MS: i64 = 5_000;

/// The running scheduler thread; [`SchedulerThread::stop`] ends and joins it.
pub struct SchedulerThread {
    stop: Sender<()>,
    handle: thread::JoinHandle<()>,
}

impl SchedulerThread {
    /// Starts the thread: it reads through `readers` and writes through the
    /// writer's channel `writer`.
    pub fn start(readers: Store, registry: Arc<Registry>, writer: Sender<Msg>) -> Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let handle = thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || run(readers, Planner::new(registry), writer, stopped))
            .map_err(Error::io("spawn scheduler", "scheduler"))?;
        Ok(SchedulerThread { stop, handle })
    }

    /// Stops the thread and waits for it. A write it is waiting on is
    /// abandoned: the writer is gone or going, and the ledger's
    /// uniqueness makes the next worker redo it exactly once.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.handle.join();
    }
}

fn run(readers: Store, mut planner: Planner, writer: Sender<Msg>, stop: Receiver<()>) {
    let mut last = (clock::now(), Instant::now());
    let mut first = true;
    loop {
        let now = clock::now();
        let wall = now.0 - last.0.0;
        let mono = last.1.elapsed().as_millis() as i64;
        if (wall - mono).abs() > JUMP_MS {
            log::warn!(
                "scheduler: the wall clock moved {wall} ms while {mono} ms passed (a clock step \
                 or a host that slept); due times are decided by the usual rules"
            );
        }
        last = (now, Instant::now());
        // A bug in one pass must not end scheduling for the worker's life:
        // it is logged and the next pass starts over.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pass(&readers, &mut planner, &writer, &stop, now)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("the scheduler's pass panicked".into())));
        let next = match result {
            Ok(Some(next)) => {
                if first {
                    first = false;
                    let at = next.map_or("none".to_string(), Timestamp::to_text);
                    log::info!("scheduler: first pass done; next due time {at}");
                }
                next
            }
            Ok(None) => return,
            Err(e) => {
                log::warn!("scheduler: {e}; trying again in {WAKE_MS} ms");
                planner.forget();
                None
            }
        };
        if sleep(next, &stop) {
            return;
        }
    }
}

/// Sleeps until the process clock reads `next`, or [`WAKE_MS`] of real
/// time have passed, whichever is first; true when told to stop. It looks
/// at the clock every [`LOOK`] instead of sleeping on it in one go: a
/// clock stepped back (or a test's clock moved
/// back) would otherwise hold the scheduler until the clock caught up,
/// and a clock moved forward is noticed at once.
fn sleep(next: Option<Timestamp>, stop: &Receiver<()>) -> bool {
    let until = Instant::now() + Duration::from_millis(WAKE_MS as u64);
    loop {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        let mut step = (until - now).min(LOOK);
        if let Some(at) = next {
            let left = at.0 - clock::now().0;
            if left <= 0 {
                return false;
            }
            step = step.min(Duration::from_millis(left as u64));
        }
        match stop.recv_timeout(step) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// One pass: plan, then write. `Ok(None)` when the scheduler must stop;
/// otherwise the earliest next due time.
fn pass(
    readers: &Store,
    planner: &mut Planner,
    writer: &Sender<Msg>,
    stop: &Receiver<()>,
    now: Timestamp,
) -> Result<Option<Option<Timestamp>>> {
    let plan = {
        let conn = readers.conn()?;
        planner.pass(&conn, now)?
    };
    if plan.writes.is_empty() {
        return Ok(Some(plan.next_due));
    }
    let writes = plan.writes;
    let decided: usize = writes.iter().map(|w| w.ticks.len()).sum();
    log::debug!(
        "scheduler: recording {decided} decisions of {} schedules",
        writes.len()
    );
    let (write, answer) = JobWrite::new("record schedule decisions", move |tx| {
        let now = clock::now().to_text();
        let recorded = schedules::record(tx, &writes, &now, &crate::manager::enqueue_metadata())?;
        Ok((recorded, writes))
    });
    if writer.send(Msg::Apply(write)).is_err() {
        return Ok(None);
    }
    // The writer may stop before it answers: then so does this thread.
    let reply = select! {
        recv(answer) -> r => r,
        recv(stop) -> _ => return Ok(None),
    };
    let Ok(result) = reply else {
        return Ok(None);
    };
    let (recorded, writes) = result?;
    planner.wrote();
    for w in &writes {
        // A long gap decides hundreds at once: the newest few say enough.
        let skip = w.ticks.len().saturating_sub(3);
        if skip > 0 {
            log::info!("schedule {}: {skip} older due times decided", w.name);
        }
        for t in &w.ticks[skip..] {
            log::info!(
                "schedule {}: due {} {} ({})",
                w.name,
                t.due,
                t.outcome.as_str(),
                t.reason
            );
        }
    }
    if !recorded.runs.is_empty() {
        log::debug!("scheduler enqueued runs {:?}", recorded.runs);
    }
    Ok(Some(plan.next_due))
}
