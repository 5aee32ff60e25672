//! The change watcher: one thread with its own database connection that
//! looks at `PRAGMA data_version` every [`POLL`] and, while anyone is
//! subscribed, as soon as the WAL file is written (an inotify watch, see
//! [`crate::walwatch`]), and when
//! any connection (the worker process, a CLI, the web server) has
//! committed, reads what changed and publishes it to the hub. Committed
//! state is the only source of what is broadcast.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TrySendError, bounded, never, select};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::{Event, Hub};
use crate::job::JobRun;
use crate::manager::Manager;
use crate::store::changes::{ChangeFeed, Snapshot};
use crate::worker::WorkerView;

/// How often the watcher looks for commits without a wake-up from the WAL
/// watch (the fallback where inotify is missing, and a safety net).
pub const POLL: Duration = Duration::from_millis(20);

/// Test-only: the poll's period in milliseconds, so that a test can show
/// that changes arrive through the WAL wake-up alone. A variable, not a
/// flag, like the test clocks (no `--help` shows it).
pub const POLL_ENV: &str = "JOBMGR_TEST_WATCH_POLL_MS";

/// The poll's period: [`POLL`] unless a test set [`POLL_ENV`].
fn poll_period() -> Duration {
    std::env::var(POLL_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(POLL, Duration::from_millis)
}
/// After reading one change, the watcher reads the next no sooner than
/// this: a look costs a few queries, and a busy worker commits hundreds of
/// times a second. (A lone commit is read within the recheck, about 1 ms.)
const MIN_GAP: Duration = Duration::from_millis(2);
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
    /// The newest `updatedAt` published: look-backs start below it.
    since: Timestamp,
    /// Run id → `updatedAt` last published, for runs inside the look-back.
    sent: HashMap<i64, String>,
    /// The newest run seen added, and its `updatedAt`: the next look reads
    /// runs from this id on. (Once the newest run is deleted its id can be
    /// given again; the `updatedAt` tells the two runs apart.)
    newest: (i64, String),
    /// The runs that were RUNNING at the last look: one that leaves the set
    /// without finishing went back to the queue.
    running: HashSet<i64>,
    worker: Option<(Value, WorkerView)>,
    stats_due: bool,
    last_stats: Instant,
    last_worker_check: Instant,
    /// Commits seen but not yet read (reading waits out a resync hold).
    runs_pending: bool,
    /// After a resync, no look-back below this change time, and no reading
    /// before `hold_until`, so a flood costs a bounded amount of work.
    floor: Option<String>,
    hold_until: Instant,
    /// The newest schedule ledger row seen.
    ticks: i64,
}

/// Runs the watcher until `stop` receives a message or is dropped. It
/// sends on `ready` once it has its starting point (the data version, the
/// newest run, the WAL watch): every commit after that is published, so
/// the server answers no one before it, or a client subscribed at once
/// could miss a commit that fell between its snapshot and that point.
pub fn run(
    manager: Manager,
    hub: Arc<Hub>,
    supervised_pid: impl Fn() -> Option<u32>,
    stop: Receiver<()>,
    ready: crossbeam_channel::Sender<()>,
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
    let (newest, running) = starting_point(&feed).unwrap_or_default();
    let mut st = State {
        since: Timestamp::now(),
        sent: HashMap::new(),
        newest,
        running,
        worker: None,
        stats_due: false,
        last_stats: Instant::now(),
        last_worker_check: Instant::now(),
        runs_pending: false,
        floor: None,
        hold_until: Instant::now(),
        ticks: manager.newest_schedule_tick().unwrap_or(0),
    };
    // Started before the first look at data_version, so that no commit
    // falls between that look and the watch.
    let (wake_tx, mut woken) = bounded::<()>(1);
    let db = manager.database_path().to_path_buf();
    let quiet = hub.clone();
    let wal = crate::walwatch::watch(&db, &db, "change-wake", move || {
        // With nobody subscribed a wake-up would be ignored: not sending it
        // spares this thread waking once per WAL write (a commit writes
        // several), a twentieth of `serve`'s CPU under HTTP enqueues.
        if quiet.is_empty() {
            return true;
        }
        // A full channel already holds a wake-up.
        !matches!(wake_tx.try_send(()), Err(TrySendError::Disconnected(_)))
    })
    .map(|(watch, _always_on)| watch);
    if wal.is_none() {
        log::info!(
            "change watcher: no WAL watch; polling every {:?}",
            poll_period()
        );
        woken = never();
    }
    let mut version = feed.version().unwrap_or(0);
    let _ = publish_worker(&manager, &hub, &supervised_pid, &mut st);
    // After a wake-up, looking again for the commit it announced.
    let mut recheck = crate::walwatch::Recheck::default();
    let mut last_change = Instant::now();
    let poll = poll_period();
    let mut next_poll = Instant::now() + poll;
    let _ = ready.send(());
    loop {
        let now = Instant::now();
        // A busy worker commits hundreds of times a second: changes are
        // read at most once per MIN_GAP, the commits between coalesced.
        let gap = MIN_GAP.saturating_sub(last_change.elapsed());
        let wait = if recheck.is_on() {
            recheck.step().max(gap)
        } else {
            next_poll.saturating_duration_since(now)
        };
        select! {
            recv(stop) -> _ => break,
            recv(woken) -> w => match w {
                // With nobody watching, the poll keeps the state as
                // cheaply as it always did.
                Ok(()) if !hub.is_empty() => recheck.start(),
                Ok(()) => {}
                // The watch thread ended: polling alone from now on.
                Err(_) => woken = never(),
            },
            default(wait) => {}
        }
        let now = Instant::now();
        let rechecking = recheck.is_on() && last_change.elapsed() >= MIN_GAP;
        if !rechecking && now < next_poll {
            continue;
        }
        if now >= next_poll {
            next_poll = now + poll;
        }
        let changed = match feed.version() {
            Ok(v) if v != version => {
                version = v;
                recheck.end();
                last_change = Instant::now();
                true
            }
            Ok(_) => {
                recheck.missed();
                false
            }
            Err(e) => {
                log::warn!("change watcher: {e}");
                false
            }
        };
        st.runs_pending |= changed;
        if st.runs_pending && Instant::now() >= st.hold_until {
            st.runs_pending = false;
            let done = if hub.is_empty() {
                rebase(&feed, &mut st)
            } else {
                publish_runs(&manager, &feed, &hub, &mut st)
            };
            if let Err(e) = done {
                log::warn!("change watcher: {e}");
            }
        }
        // With nobody subscribed there is no one to tell: a subscriber's
        // snapshot holds the worker's state, and the first status read
        // after it is published whatever it is (the last one is forgotten).
        if hub.is_empty() {
            st.worker = None;
        } else {
            if changed {
                publish_ticks(&manager, &hub, &mut st);
            }
            if (changed || st.last_worker_check.elapsed() >= WORKER_EVERY)
                && let Err(e) = publish_worker(&manager, &hub, &supervised_pid, &mut st)
            {
                log::warn!("change watcher: {e}");
            }
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
    if let Some(w) = wal {
        w.stop();
    }
}

/// Tells pages that the scheduler decided due times (one message per
/// commit that added ledger rows; the runs they made go out as runs).
fn publish_ticks(manager: &Manager, hub: &Hub, st: &mut State) {
    match manager.newest_schedule_tick() {
        Ok(n) if n > st.ticks => {
            let event = serde_json::json!({"type": "schedules", "change": "decided"});
            hub.publish_text(event.to_string().into());
            st.ticks = n;
        }
        Ok(n) => st.ticks = n,
        Err(e) => log::warn!("change watcher: {e}"),
    }
}

fn publish_runs(manager: &Manager, feed: &ChangeFeed, hub: &Hub, st: &mut State) -> Result<()> {
    let mut at = st.since.plus_ms(-LOOKBACK_MS).to_text();
    if let Some(floor) = st.floor.as_ref().filter(|f| **f > at) {
        at = floor.clone();
    }
    let Some(found) = look(feed, st, &at)? else {
        return resync(feed, hub, st);
    };
    // A run can be found twice (added and RUNNING since): published once.
    let mut fresh: HashMap<i64, JobRun> = HashMap::new();
    for run in found {
        if st.sent.get(&run.id) != Some(&run.updated_at) {
            fresh.insert(run.id, run);
        }
    }
    let mut fresh: Vec<JobRun> = fresh.into_values().collect();
    fresh.sort_by(|a, b| (&a.updated_at, a.id).cmp(&(&b.updated_at, b.id)));
    st.stats_due |= !fresh.is_empty();
    for run in fresh {
        if let Some(t) = Timestamp::parse(&run.updated_at) {
            st.since = st.since.max(t);
        }
        st.sent.insert(run.id, run.updated_at.clone());
        // With what is usual for its type: the page's ETA and flags.
        let mut view = crate::events::run_json(&run);
        manager.add_usual(&mut view, &run);
        hub.publish(&Event::Run(Box::new(view)));
    }
    let horizon = st.since.plus_ms(-LOOKBACK_MS).to_text();
    st.sent.retain(|_, at| *at >= horizon);
    Ok(())
}

/// The runs that may have changed since `at`: added ones, RUNNING ones
/// updated since, finished ones, and those back in the queue. `None` when
/// there are more than `MAX_SCAN`.
fn look(feed: &ChangeFeed, st: &mut State, at: &str) -> Result<Option<Vec<JobRun>>> {
    feed.read(|snap| look_in(snap, st, at))
}

fn look_in(snap: &Snapshot<'_>, st: &mut State, at: &str) -> Result<Option<Vec<JobRun>>> {
    let mut found = Vec::new();
    let mut newest = st.newest.clone();
    let max = snap.max_run_id()?;
    if max < newest.0 {
        // The newest run was deleted: its id may be given again.
        newest = (max, String::new());
    }
    let mut from = newest.0;
    loop {
        let page = snap.runs_from_id(from, PAGE)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            from = last.id + 1;
            newest = (last.id, last.updated_at.clone());
        }
        found.extend(
            page.into_iter()
                .filter(|r| (r.id, &r.updated_at) != (st.newest.0, &st.newest.1)),
        );
        if found.len() > MAX_SCAN {
            return Ok(None);
        }
        if !full {
            break;
        }
    }
    let (ids, changed) = snap.running_runs(at, MAX_SCAN + 1)?;
    found.extend(changed);
    let running: HashSet<i64> = ids.into_iter().collect();
    let left: Vec<i64> = st.running.difference(&running).copied().collect();
    let (mut after, mut id) = (at.to_string(), 0);
    loop {
        if found.len() > MAX_SCAN {
            return Ok(None);
        }
        let page = snap.runs_finished_after((&after, id), PAGE)?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.finished_at.clone().unwrap_or_default();
            id = last.id;
        }
        found.extend(page);
        if !full {
            break;
        }
    }
    for chunk in left.chunks(PAGE) {
        found.extend(snap.queued_among(chunk)?);
    }
    st.newest = newest;
    st.running = running;
    Ok(Some(found))
}

/// Nobody is subscribed: instead of reading every run that changed (and
/// making its event), the watcher moves its state to now, three reads in
/// one read transaction. The
/// first look after someone subscribes then reads what changed since the
/// last commit seen here, and the subscriber's snapshot, read after it
/// subscribed, holds everything before. Reading every change cost a
/// tenth of `serve`'s CPU under HTTP enqueues with no page open.
fn rebase(feed: &ChangeFeed, st: &mut State) -> Result<()> {
    st.since = st.since.max(Timestamp::now());
    (st.newest, st.running) = starting_point(feed)?;
    st.sent.clear();
    Ok(())
}

/// Too much changed at once: clients are told to resync instead of
/// receiving a flood of events, and the watcher starts over from now.
fn resync(feed: &ChangeFeed, hub: &Hub, st: &mut State) -> Result<()> {
    log::info!("{MAX_SCAN}+ runs changed at once; clients told to resync");
    hub.publish(&Event::Resync);
    let now = Timestamp::now();
    st.since = st.since.max(now);
    st.floor = Some(now.to_text());
    (st.newest, st.running) = starting_point(feed)?;
    st.hold_until = Instant::now() + RESYNC_HOLD;
    st.stats_due = true;
    Ok(())
}

/// Where reading changes starts from now: the newest run and the running
/// ones, from one snapshot.
fn starting_point(feed: &ChangeFeed) -> Result<((i64, String), HashSet<i64>)> {
    feed.read(|snap| Ok((newest_run(snap)?, running_ids(snap)?)))
}

/// The newest run's id and `updatedAt` ((0, "") when there is none).
fn newest_run(snap: &Snapshot<'_>) -> Result<(i64, String)> {
    let max = snap.max_run_id()?;
    Ok(snap
        .runs_from_id(max, 1)?
        .into_iter()
        .next()
        .map(|r| (r.id, r.updated_at))
        .unwrap_or_default())
}

fn running_ids(snap: &Snapshot<'_>) -> Result<HashSet<i64>> {
    Ok(snap.running_runs("", 0)?.0.into_iter().collect())
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
        status.state,
    );
    if st.worker.as_ref() != Some(&key) {
        st.worker = Some(key);
        hub.publish(&Event::Worker(status.view(supervised_pid())));
    }
    Ok(())
}
