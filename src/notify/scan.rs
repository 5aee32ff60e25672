//! `notify-scan`: finds the events that are visible only in committed
//! rows, so that the writer, which commits runs in large batches, does no
//! extra work for them: runs that failed for good (`run_failed`, by
//! `finishedAt` since a cursor), unfinished runs past a notifier's
//! `overdue_minutes` (`run_overdue`), and schedule due times recorded as
//! missed (`schedule_missed`, by `ScheduleTick` id since a cursor).
//!
//! Like every periodic task it reads first, and writes only when it has
//! found something: the outbox rows and the moved cursors in one
//! transaction, so a crash between the two cannot lose or repeat an
//! event. The outbox's unique key makes a second sighting harmless.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::maintenance::ticker::{Counts, Task, Tick};
use crate::store::notify::{self as queries, NewRow, RunRow};
use crate::store::{self, Connection};

use super::{Event, Fact, Notifier};

/// Failed runs read per scan.
const PAGE: usize = 500;
/// How far behind the cursor failed runs are looked for again: another
/// process (serve's recovery, `give-up`) may commit a run whose
/// `finishedAt` is older than one the worker committed meanwhile.
const SLACK_MS: i64 = 300_000;
/// How often overdue runs are looked for (on real time, or as far on the
/// clock): a minute's precision is all `overdue_minutes` asks for.
const OVERDUE_EVERY: Duration = Duration::from_secs(20);
/// Delivered and failed rows are kept this long, then removed.
const KEEP_MS: i64 = 30 * 86_400_000;
/// How often old rows are looked for, on the clock.
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// Ticks the missed-tick cursor may lag behind before it is moved on its
/// own (so the read stays short when no tick is ever missed).
const TICK_LAG: i64 = 1_000;

const FAILED_CURSOR: &str = "run_failed";
const TICK_CURSOR: &str = "schedule_missed";

/// The scan of one worker.
pub struct NotifyScan {
    db: PathBuf,
    conn: Option<Connection>,
    notifiers: Vec<Notifier>,
    /// The config file's schedules and their jobs (the `Schedule` table
    /// holds only the ones made through the API).
    file_schedules: Vec<(String, String)>,
    overdue_at: Option<(Instant, Timestamp)>,
    prune_at: Option<Timestamp>,
}

impl NotifyScan {
    /// The scan for `notifiers` on `db`; `file_schedules` are the config
    /// file's (schedule, job) pairs.
    pub fn new(
        db: PathBuf,
        notifiers: Vec<Notifier>,
        file_schedules: Vec<(String, String)>,
    ) -> NotifyScan {
        NotifyScan {
            db,
            conn: None,
            notifiers,
            file_schedules,
            overdue_at: None,
            prune_at: None,
        }
    }

    fn wanted(&self, e: Event) -> bool {
        self.notifiers.iter().any(|n| n.on.contains(&e))
    }

    fn rows(&self, facts: &[Fact], now: Timestamp) -> Vec<NewRow> {
        facts
            .iter()
            .flat_map(|f| {
                self.notifiers
                    .iter()
                    .filter(|n| n.wants(f.event, f.job.as_deref()))
                    .map(move |n| f.row_for(n, now))
            })
            .collect()
    }
}

/// What one scan decided to write.
#[derive(Default)]
struct Found {
    rows: Vec<NewRow>,
    cursors: Vec<(&'static str, String)>,
    prune_before: Option<String>,
}

impl Task for NotifyScan {
    fn name(&self) -> &'static str {
        "notify-scan"
    }

    fn run(&mut self, tick: &Tick) -> Result<Counts> {
        if self.notifiers.is_empty() {
            return Ok(Counts::new());
        }
        if self.conn.is_none() {
            self.conn = Some(store::open_connection(&self.db)?);
        }
        let Some(conn) = self.conn.as_ref() else {
            return Ok(Counts::new());
        };
        let now = tick.now;
        let mut found = Found::default();
        if self.wanted(Event::RunFailed) {
            self.failed(conn, now, &mut found)?;
        }
        if self.wanted(Event::ScheduleMissed) {
            self.missed(conn, now, &mut found)?;
        }
        let every_ms = OVERDUE_EVERY.as_millis() as i64;
        if self.wanted(Event::RunOverdue)
            && self.overdue_at.is_none_or(|(real, clock)| {
                real.elapsed() >= OVERDUE_EVERY || now.0 - clock.0 >= every_ms
            })
        {
            self.overdue_at = Some((Instant::now(), now));
            self.overdue(conn, now, &mut found)?;
        }
        if self.prune_at.is_none_or(|t| now >= t) {
            self.prune_at = Some(now.plus_ms(PRUNE_EVERY_MS));
            let before = now.plus_ms(-KEEP_MS).to_text();
            if queries::any_to_prune(conn, &before)? {
                found.prune_before = Some(before);
            }
        }
        if found.rows.is_empty() && found.cursors.is_empty() && found.prune_before.is_none() {
            return Ok(Counts::new());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Counts::new());
        };
        let (queued, pruned) = store::write_on(conn, "queue notifications", |tx| {
            let queued = queries::insert(tx, &found.rows)?;
            for (name, value) in &found.cursors {
                queries::set_cursor(tx, name, value)?;
            }
            let pruned = match &found.prune_before {
                Some(before) => queries::prune(tx, before)?,
                None => 0,
            };
            Ok((queued, pruned))
        })?;
        let mut counts = Counts::new();
        if queued > 0 {
            counts.insert("queued", queued as u64);
        }
        if pruned > 0 {
            counts.insert("pruned", pruned as u64);
        }
        Ok(counts)
    }
}

impl NotifyScan {
    /// Failed runs past the cursor, and those up to `SLACK_MS` behind it
    /// that are not queued yet. The first scan only sets the cursor: runs
    /// that failed before notifications were configured are not reported.
    fn failed(&self, conn: &Connection, now: Timestamp, found: &mut Found) -> Result<()> {
        let Some(cursor) = queries::cursor(conn, FAILED_CURSOR)? else {
            found.cursors.push((FAILED_CURSOR, now.to_text()));
            return Ok(());
        };
        let behind = Timestamp::parse(&cursor)
            .map(|t| t.plus_ms(-SLACK_MS).to_text())
            .unwrap_or_else(|| cursor.clone());
        let late = queries::failed_since(conn, &behind, Some(&cursor), PAGE)?;
        let new = queries::failed_since(conn, &cursor, None, PAGE)?;
        let facts: Vec<Fact> = late.iter().chain(&new).map(failed_fact).collect();
        let rows = self.rows(&facts, now);
        if let Some(last) = new.last() {
            // Moved with what it found, or on its own when only unwanted
            // runs were found and the page was full or far ahead, so the
            // next reads stay short.
            let far = Timestamp::parse(&cursor)
                .zip(Timestamp::parse(&last.at))
                .is_some_and(|(c, l)| l.0 - c.0 > SLACK_MS);
            if !rows.is_empty() || new.len() == PAGE || far {
                found.cursors.push((FAILED_CURSOR, last.at.clone()));
            }
        }
        found.rows.extend(rows);
        Ok(())
    }

    /// Missed due times past the cursor.
    fn missed(&self, conn: &Connection, now: Timestamp, found: &mut Found) -> Result<()> {
        // The newest tick first: everything up to it is read below, so the
        // cursor can move to it without skipping a tick committed between
        // the two reads.
        let last = queries::last_tick(conn)?;
        let Some(cursor) = queries::cursor(conn, TICK_CURSOR)? else {
            found.cursors.push((TICK_CURSOR, last.to_string()));
            return Ok(());
        };
        let cursor: i64 = cursor.parse().unwrap_or(0);
        if last <= cursor {
            return Ok(());
        }
        let ticks = queries::missed_ticks(conn, cursor, last, PAGE)?;
        // One event per schedule and scan, however many due times a gap
        // held (a week down with a per-minute schedule is one message).
        let mut by_schedule: Vec<(&str, Vec<&queries::MissedTick>)> = Vec::new();
        for t in &ticks {
            match by_schedule.iter_mut().find(|(s, _)| *s == t.schedule) {
                Some((_, list)) => list.push(t),
                None => by_schedule.push((&t.schedule, vec![t])),
            }
        }
        let facts: Vec<Fact> = by_schedule
            .iter()
            .filter_map(|(schedule, list)| {
                let (first, last) = (list.first()?, list.last()?);
                let job = last.job.clone().or_else(|| {
                    self.file_schedules
                        .iter()
                        .find(|(s, _)| s == schedule)
                        .map(|(_, j)| j.clone())
                });
                let reason = last.reason.clone().unwrap_or_default();
                let when = if list.len() == 1 {
                    format!("its due time {}", last.due_at)
                } else {
                    format!(
                        "{} due times, {} to {}",
                        list.len(),
                        first.due_at,
                        last.due_at
                    )
                };
                Some(
                    Fact {
                        event: Event::ScheduleMissed,
                        subject: format!("tick:{}", last.id),
                        run_id: None,
                        job: job.clone(),
                        summary: format!("schedule {schedule} missed {when} ({reason})"),
                        fields: Default::default(),
                    }
                    .with("schedule", schedule.to_string())
                    .with("job", job)
                    .with("dueAt", last.due_at.clone())
                    .with("firstDueAt", first.due_at.clone())
                    .with("missed", list.len())
                    .with("reason", reason),
                )
            })
            .collect();
        let rows = self.rows(&facts, now);
        let to = if ticks.len() == PAGE {
            ticks.last().map_or(last, |t| t.id)
        } else {
            last
        };
        if !rows.is_empty() || ticks.len() == PAGE || last - cursor > TICK_LAG {
            found.cursors.push((TICK_CURSOR, to.to_string()));
        }
        found.rows.extend(rows);
        Ok(())
    }

    /// Unfinished runs past each notifier's own threshold.
    fn overdue(&self, conn: &Connection, now: Timestamp, found: &mut Found) -> Result<()> {
        for n in self
            .notifiers
            .iter()
            .filter(|n| n.on.contains(&Event::RunOverdue))
        {
            let ms = i64::try_from(n.overdue.as_millis()).unwrap_or(i64::MAX);
            let cutoff = now.plus_ms(-ms).to_text();
            let jobs = n
                .jobs
                .as_ref()
                .map(|j| serde_json::Value::from(j.clone()).to_string());
            for r in queries::overdue(conn, &cutoff, &n.name, jobs.as_deref(), PAGE)? {
                let minutes = n.overdue.as_secs() / 60;
                let since = if r.scheduled_for.is_some() {
                    "its due time"
                } else {
                    "it started"
                };
                let fact = Fact::run(
                    Event::RunOverdue,
                    r.id,
                    &r.job_name,
                    format!(
                        "run {} ({}) is still {} {minutes} min after {since} ({})",
                        r.id, r.job_name, r.status, r.at
                    ),
                )
                .with("status", r.status.clone())
                .with("since", r.at.clone())
                .with("overdueMinutes", minutes);
                if n.wants(Event::RunOverdue, Some(&r.job_name)) {
                    found.rows.push(fact.row_for(n, now));
                }
            }
        }
        Ok(())
    }
}

fn failed_fact(r: &RunRow) -> Fact {
    let error = r.error.clone().unwrap_or_default();
    let first_line = error.lines().next().unwrap_or("").to_string();
    Fact::run(
        Event::RunFailed,
        r.id,
        &r.job_name,
        format!("run {} ({}) failed: {first_line}", r.id, r.job_name),
    )
    .with("status", r.status.clone())
    .with("error", error)
    .with("attempt", r.attempt)
    .with("finishedAt", r.at.clone())
}
