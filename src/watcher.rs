//! The change watcher: one thread with its own database connection that
//! polls `PRAGMA data_version`, and when any connection (the worker process,
//! a CLI, the web server) has committed, reads what changed and publishes
//! it to the hub. Committed state is the only source of what is broadcast.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::{Event, Hub};
use crate::manager::Manager;
use crate::web::worker_json;

/// How often the watcher looks for commits.
pub const POLL: Duration = Duration::from_millis(20);
/// Statistics go out at most this often.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// How often the worker's status is re-read without a commit (it turns
/// STALE by the clock alone).
const WORKER_EVERY: Duration = Duration::from_secs(1);
/// Runs re-read behind the newest change seen, because another process may
/// commit a change stamped slightly earlier than one already seen (it took
/// its timestamp before waiting for the write lock).
const LOOKBACK_MS: i64 = 2_000;
/// Rows read per query.
const PAGE: usize = 1_000;
/// More changed rows than this in one look: clients are told to resync
/// instead of receiving them one by one.
const MAX_SCAN: usize = 10_000;
/// After a resync, the watcher waits this long before reading runs again.
const RESYNC_HOLD: Duration = Duration::from_millis(500);

/// What the watcher remembers between looks.
struct State {
    since: Timestamp,
    /// Run id → `updatedAt` last published, for runs inside the look-back.
    sent: HashMap<i64, String>,
    worker: Option<(Value, String)>,
    stats_due: bool,
    last_stats: Instant,
    last_worker_check: Instant,
    /// Commits seen but not yet read (reading waits out a resync hold).
    runs_pending: bool,
    /// After a resync, no look-back below this change time, and no reading
    /// before `hold_until`, so a flood costs a bounded amount of work.
    floor: Option<String>,
    hold_until: Instant,
}

/// Runs the watcher until `stop` receives a message or is dropped.
pub fn run(
    manager: Manager,
    hub: Arc<Hub>,
    supervised_pid: impl Fn() -> Option<u32>,
    stop: Receiver<()>,
) {
    let feed = loop {
        match manager.change_feed() {
            Ok(f) => break f,
            Err(e) => {
                log::error!("change watcher: {e}");
                if !matches!(
                    stop.recv_timeout(Duration::from_secs(1)),
                    Err(RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        }
    };
    let start = manager
        .last_change()
        .ok()
        .and_then(|t| Timestamp::parse(&t))
        .unwrap_or_else(Timestamp::now);
    let mut st = State {
        since: start,
        sent: HashMap::new(),
        worker: None,
        stats_due: false,
        last_stats: Instant::now(),
        last_worker_check: Instant::now(),
        runs_pending: false,
        floor: None,
        hold_until: Instant::now(),
    };
    let mut version = feed.version().unwrap_or(0);
    let _ = publish_worker(&manager, &hub, &supervised_pid, &mut st);
    loop {
        match stop.recv_timeout(POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let changed = match feed.version() {
            Ok(v) if v != version => {
                version = v;
                true
            }
            Ok(_) => false,
            Err(e) => {
                log::warn!("change watcher: {e}");
                false
            }
        };
        st.runs_pending |= changed;
        if st.runs_pending && Instant::now() >= st.hold_until {
            st.runs_pending = false;
            if let Err(e) = publish_runs(&manager, &hub, &mut st) {
                log::warn!("change watcher: {e}");
            }
        }
        if (changed || st.last_worker_check.elapsed() >= WORKER_EVERY)
            && let Err(e) = publish_worker(&manager, &hub, &supervised_pid, &mut st)
        {
            log::warn!("change watcher: {e}");
        }
        if st.stats_due && st.last_stats.elapsed() >= STATS_EVERY {
            match manager.stats() {
                Ok(s) => {
                    hub.publish(&Event::Stats(Box::new(s)));
                    st.stats_due = false;
                    st.last_stats = Instant::now();
                }
                Err(e) => log::warn!("change watcher: {e}"),
            }
        }
    }
}

fn publish_runs(manager: &Manager, hub: &Hub, st: &mut State) -> Result<()> {
    let mut at = st.since.plus_ms(-LOOKBACK_MS).to_text();
    if let Some(floor) = st.floor.as_ref().filter(|f| **f > at) {
        at = floor.clone();
    }
    let mut id = 0;
    let mut fresh = Vec::new();
    let mut scanned = 0;
    loop {
        let page = manager.changed_runs((&at, id), PAGE)?;
        scanned += page.len();
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            at = last.updated_at.clone();
            id = last.id;
        }
        fresh.extend(
            page.into_iter()
                .filter(|r| st.sent.get(&r.id) != Some(&r.updated_at)),
        );
        if !full {
            break;
        }
        if scanned >= MAX_SCAN {
            // Too much at once: one resync instead of a flood of events.
            log::info!("{scanned}+ runs changed at once; clients told to resync");
            hub.publish(&Event::Resync);
            let last = manager.last_change()?;
            if let Some(t) = Timestamp::parse(&last) {
                st.since = st.since.max(t);
            }
            st.floor = Some(last);
            st.hold_until = Instant::now() + RESYNC_HOLD;
            st.stats_due = true;
            return Ok(());
        }
    }
    st.stats_due |= !fresh.is_empty();
    for run in fresh {
        if let Some(t) = Timestamp::parse(&run.updated_at) {
            st.since = st.since.max(t);
        }
        st.sent.insert(run.id, run.updated_at.clone());
        hub.publish(&Event::Run(Box::new(run)));
    }
    let horizon = st.since.plus_ms(-LOOKBACK_MS).to_text();
    st.sent.retain(|_, at| *at >= horizon);
    Ok(())
}

fn publish_worker(
    manager: &Manager,
    hub: &Hub,
    supervised_pid: &impl Fn() -> Option<u32>,
    st: &mut State,
) -> Result<()> {
    st.last_worker_check = Instant::now();
    let status = manager.worker_status()?;
    let key = (
        serde_json::to_value(&status.worker).unwrap_or(Value::Null),
        status.state.clone(),
    );
    if st.worker.as_ref() != Some(&key) {
        st.worker = Some(key);
        hub.publish(&Event::Worker(worker_json(&status, supervised_pid())));
    }
    Ok(())
}
