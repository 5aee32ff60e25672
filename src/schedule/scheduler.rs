//! The scheduler thread of the worker, the single process by design (so no
//! leader election). It sleeps on the process clock until the next due
//! time, or at most [`WAKE_MS`] so that schedules edited through the API
//! apply without a restart; then it plans every schedule ([`Planner`]) on
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
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select};

use super::pass::Planner;
use crate::clock::{self, Timestamp, Waited};
use crate::context::{JobWrite, Msg};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::store::{Store, schedules};

/// The longest the scheduler sleeps (by the process clock) before it
/// reads the schedules again.
pub const WAKE_MS: i64 = 2_000;
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
    loop {
        let now = clock::now();
        let wall = now.0 - last.0.0;
        let mono = last.1.elapsed().as_millis() as i64;
        if (wall - mono).abs() > JUMP_MS {
            log::warn!(
                "scheduler: the wall clock moved {} ms while {} ms passed (a clock step or a host \
                 that slept); due times are decided by the usual rules",
                wall,
                mono
            );
        }
        last = (now, Instant::now());
        let next = match pass(&readers, &mut planner, &writer, &stop, now) {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(e) => {
                log::warn!("scheduler: {e}; trying again in {} ms", WAKE_MS);
                planner.forget();
                None
            }
        };
        let cap = now.plus_ms(WAKE_MS);
        let at = next.map_or(cap, |n| n.min(cap));
        match clock::wait_until(at, &stop) {
            Waited::Due => {}
            Waited::Message(()) | Waited::Disconnected => return,
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
