//! Queries on `Schedule`, `ScheduleState` and the `ScheduleTick` ledger:
//! the schedules made through the API, what the scheduler keeps per
//! schedule, and the one transaction that records a pass's decisions with
//! the runs they make.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::job::JobStatus;
use crate::schedule::{self, CronExpr, Missed, Outcome, Overlap, Schedule, Source};

/// A schedule row of the `Schedule` table.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    /// The schedule, or why the row no longer reads as one (edited by hand).
    pub schedule: std::result::Result<Schedule, String>,
    /// When it was made: a new schedule decides no due time before it.
    pub created_at: String,
}

/// What the scheduler keeps for one schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub paused: bool,
    pub since: String,
    pub last_due: Option<String>,
    pub waiting: Option<String>,
    pub last_run: Option<LastRun>,
}

/// A schedule's latest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub id: i64,
    /// None when retention has deleted the run.
    pub status: Option<JobStatus>,
    /// The due time it ran for (None for "run now").
    pub due_at: Option<String>,
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub due_at: String,
    pub decided_at: String,
    pub outcome: Outcome,
    pub run_id: Option<i64>,
    pub reason: Option<String>,
}

/// What one pass records for one schedule.
#[derive(Debug, Clone)]
pub struct ScheduleWrite {
    pub name: String,
    pub job: String,
    /// The run's parameters, validated and encoded.
    pub parameters: String,
    /// Starts the schedule's state at this time if it has none.
    pub since: String,
    pub ticks: Vec<TickWrite>,
    /// The new latest decided due time (kept if older than the stored one).
    pub last_due: Option<String>,
    /// The due time now waiting for the previous run, if any.
    pub waiting: Option<String>,
}

/// One decision to record.
#[derive(Debug, Clone)]
pub struct TickWrite {
    pub due: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// What [`record`] wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Ledger rows inserted (a due time already recorded is not).
    pub ticks: usize,
    /// Runs enqueued.
    pub runs: Vec<i64>,
}

const SCHEDULE_COLUMNS: &str = "name, job, cron, timezone, parameters, missed, maxCatchUp, \
                                overlap, enabled, createdAt, updatedAt";

fn stored_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    let name: String = r.get(0)?;
    let (job, cron, zone, params): (String, String, String, String) =
        (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let (missed, catch_up, overlap, enabled): (String, i64, String, bool) =
        (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?);
    let schedule = (|| {
        Ok(Schedule {
            name: name.clone(),
            job,
            cron: CronExpr::parse(&cron).map_err(|e| format!("cron '{cron}': {e}"))?,
            zone: schedule::parse_zone(&zone)?,
            parameters: serde_json::from_str(&params).map_err(|e| format!("parameters: {e}"))?,
            missed: Missed::parse(&missed)?,
            max_catch_up: schedule::check_catch_up(catch_up)?,
            overlap: Overlap::parse(&overlap)?,
            enabled,
            source: Source::Api,
        })
    })();
    Ok(Stored {
        name,
        schedule,
        created_at: r.get(9)?,
    })
}

/// Every schedule of the `Schedule` table, by name.
pub fn list(conn: &Connection) -> Result<Vec<Stored>> {
    let op = "list schedules";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM Schedule ORDER BY name"
        ))
        .map_err(Error::db(op))?;
    let rows = stmt.query_map([], stored_from_row).map_err(Error::db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(op))
}

/// One schedule of the `Schedule` table.
pub fn get(conn: &Connection, name: &str) -> Result<Option<Stored>> {
    conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM Schedule WHERE name = ?1"
    ))
    .and_then(|mut s| s.query_row([name], stored_from_row).optional())
    .map_err(Error::db("read schedule"))
}

fn state_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, State)> {
    let last_run = match r.get::<_, Option<i64>>(5)? {
        None => None,
        Some(id) => Some(LastRun {
            id,
            status: r
                .get::<_, Option<String>>(6)?
                .as_deref()
                .and_then(JobStatus::parse),
            due_at: r.get(7)?,
        }),
    };
    Ok((
        r.get(0)?,
        State {
            paused: r.get(1)?,
            since: r.get(2)?,
            last_due: r.get(3)?,
            waiting: r.get(4)?,
            last_run,
        },
    ))
}

const STATE_SELECT: &str = "SELECT s.scheduleName, s.paused, s.since, s.lastDueAt, \
     s.waitingDueAt, s.lastRunId, r.status, r.scheduledFor \
     FROM ScheduleState s LEFT JOIN JobRun r ON r.id = s.lastRunId";

/// The state of every schedule that has one, by name.
pub fn states(conn: &Connection) -> Result<HashMap<String, State>> {
    let op = "read schedule states";
    let mut stmt = conn.prepare_cached(STATE_SELECT).map_err(Error::db(op))?;
    let rows = stmt.query_map([], state_from_row).map_err(Error::db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(op))
}

/// The state of one schedule.
pub fn state(conn: &Connection, name: &str) -> Result<Option<State>> {
    conn.prepare_cached(&format!("{STATE_SELECT} WHERE s.scheduleName = ?1"))
        .and_then(|mut s| s.query_row([name], state_from_row).optional())
        .map(|o| o.map(|(_, st)| st))
        .map_err(Error::db("read schedule state"))
}

/// The newest `limit` ledger rows of a schedule, newest first.
pub fn ticks(conn: &Connection, name: &str, limit: usize) -> Result<Vec<Tick>> {
    let op = "read schedule ledger";
    let mut stmt = conn
        .prepare_cached(
            "SELECT dueAt, decidedAt, outcome, runId, reason FROM ScheduleTick \
             WHERE scheduleName = ?1 ORDER BY dueAt DESC LIMIT ?2",
        )
        .map_err(Error::db(op))?;
    let rows = stmt
        .query_map(params![name, limit as i64], |r| {
            let outcome: String = r.get(2)?;
            Ok(Tick {
                due_at: r.get(0)?,
                decided_at: r.get(1)?,
                // The column's CHECK allows only the four outcomes.
                outcome: Outcome::parse(&outcome).unwrap_or(Outcome::SkippedMissed),
                run_id: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .map_err(Error::db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(op))
}

/// Records one pass: per schedule its state, its ledger rows and, for
/// each ENQUEUED row that was not there yet, its run, all in the caller's
/// transaction. A due time already in the ledger (a pass repeated after a
/// crash) is left as it was and enqueues nothing.
pub fn record(
    tx: &Transaction<'_>,
    writes: &[ScheduleWrite],
    now: &str,
    metadata: &str,
) -> Result<Recorded> {
    let op = "record schedule decisions";
    let mut out = Recorded::default();
    let mut tick = tx
        .prepare_cached(
            "INSERT INTO ScheduleTick (scheduleName, dueAt, decidedAt, outcome, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scheduleName, dueAt) DO NOTHING",
        )
        .map_err(Error::db(op))?;
    let mut run = tx
        .prepare_cached(
            "INSERT INTO JobRun (jobName, parameters, triggeredBy, metadata, scheduleName, \
             scheduledFor, status, createdAt, updatedAt) \
             VALUES (?1, ?2, 'schedule', ?3, ?4, ?5, 'QUEUED', ?6, ?6)",
        )
        .map_err(Error::db(op))?;
    let mut link = tx
        .prepare_cached("UPDATE ScheduleTick SET runId = ?3 WHERE scheduleName = ?1 AND dueAt = ?2")
        .map_err(Error::db(op))?;
    for w in writes {
        let mut last_run = None;
        for t in &w.ticks {
            let inserted = tick
                .execute(params![w.name, t.due, now, t.outcome.as_str(), t.reason])
                .map_err(Error::db(op))?;
            if inserted == 0 || t.outcome != Outcome::Enqueued {
                continue;
            }
            run.execute(params![w.job, w.parameters, metadata, w.name, t.due, now])
                .map_err(Error::db(op))?;
            let id = tx.last_insert_rowid();
            link.execute(params![w.name, t.due, id])
                .map_err(Error::db(op))?;
            out.runs.push(id);
            last_run = Some(id);
        }
        out.ticks += w.ticks.len();
        save_state(tx, w, last_run, now)?;
    }
    if super::counts::by_hand(tx)? {
        super::counts::add_inserted(tx, out.runs.len())?;
    }
    Ok(out)
}

fn save_state(
    tx: &Transaction<'_>,
    w: &ScheduleWrite,
    last_run: Option<i64>,
    now: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ScheduleState (scheduleName, since, lastDueAt, waitingDueAt, lastRunId, updatedAt) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (scheduleName) DO UPDATE SET \
           lastDueAt = CASE WHEN lastDueAt IS NULL OR excluded.lastDueAt > lastDueAt \
                       THEN excluded.lastDueAt ELSE lastDueAt END, \
           waitingDueAt = excluded.waitingDueAt, \
           lastRunId = coalesce(excluded.lastRunId, lastRunId), \
           updatedAt = excluded.updatedAt",
    )
    .and_then(|mut s| s.execute(params![w.name, w.since, w.last_due, w.waiting, last_run, now]))
    .map(|_| ())
    .map_err(Error::db("save schedule state"))
}

/// The fields of a schedule as stored.
pub struct NewSchedule<'a> {
    pub schedule: &'a Schedule,
    pub parameters: String,
}

/// Inserts an API schedule and starts its state (not paused, counting due
/// times from `now`). False when the name is taken.
pub fn insert(tx: &Transaction<'_>, s: &NewSchedule<'_>, now: &str) -> Result<bool> {
    let op = "create schedule";
    let sc = s.schedule;
    let n = tx
        .prepare_cached(
            "INSERT INTO Schedule (name, job, cron, timezone, parameters, missed, maxCatchUp, \
             overlap, enabled, createdAt, updatedAt) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) ON CONFLICT (name) DO NOTHING",
        )
        .and_then(|mut st| {
            st.execute(params![
                sc.name,
                sc.job,
                sc.cron.as_str(),
                sc.zone.name(),
                s.parameters,
                sc.missed.as_str(),
                sc.max_catch_up,
                sc.overlap.as_str(),
                sc.enabled,
                now
            ])
        })
        .map_err(Error::db(op))?;
    if n == 1 {
        restart(tx, &sc.name, now)?;
    }
    Ok(n == 1)
}

/// Replaces an API schedule's fields. False when there is none.
pub fn update(tx: &Transaction<'_>, s: &NewSchedule<'_>, now: &str) -> Result<bool> {
    let sc = s.schedule;
    tx.prepare_cached(
        "UPDATE Schedule SET job = ?2, cron = ?3, timezone = ?4, parameters = ?5, missed = ?6, \
         maxCatchUp = ?7, overlap = ?8, enabled = ?9, updatedAt = ?10 WHERE name = ?1",
    )
    .and_then(|mut st| {
        st.execute(params![
            sc.name,
            sc.job,
            sc.cron.as_str(),
            sc.zone.name(),
            s.parameters,
            sc.missed.as_str(),
            sc.max_catch_up,
            sc.overlap.as_str(),
            sc.enabled,
            now
        ])
    })
    .map(|n| n == 1)
    .map_err(Error::db("update schedule"))
}

/// Counts due times from `now` on (a new schedule, a changed expression,
/// one enabled again): nothing before it is backfilled. Keeps `paused`.
pub fn restart(tx: &Transaction<'_>, name: &str, now: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ScheduleState (scheduleName, since, updatedAt) VALUES (?1, ?2, ?2) \
         ON CONFLICT (scheduleName) DO UPDATE SET since = excluded.since, \
           waitingDueAt = NULL, updatedAt = excluded.updatedAt",
    )
    .and_then(|mut s| s.execute(params![name, now]))
    .map(|_| ())
    .map_err(Error::db("restart schedule"))
}

/// Deletes an API schedule and its state; its ledger rows stay. False
/// when there is none.
pub fn delete(tx: &Transaction<'_>, name: &str) -> Result<bool> {
    let op = "delete schedule";
    let n = tx
        .execute("DELETE FROM Schedule WHERE name = ?1", [name])
        .map_err(Error::db(op))?;
    tx.execute("DELETE FROM ScheduleState WHERE scheduleName = ?1", [name])
        .map_err(Error::db(op))?;
    Ok(n == 1)
}

/// Pauses or resumes a schedule (either kind); returns whether it was
/// paused before. A schedule without state starts counting from `now`.
pub fn set_paused(tx: &Transaction<'_>, name: &str, paused: bool, now: &str) -> Result<bool> {
    let op = "pause schedule";
    let before: Option<bool> = tx
        .query_row(
            "SELECT paused FROM ScheduleState WHERE scheduleName = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(Error::db(op))?;
    tx.execute(
        "INSERT INTO ScheduleState (scheduleName, paused, since, updatedAt) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (scheduleName) DO UPDATE SET paused = excluded.paused, \
           updatedAt = excluded.updatedAt",
        params![name, paused, now],
    )
    .map_err(Error::db(op))?;
    Ok(before.unwrap_or(false))
}

/// Inserts a "run now" run of a schedule (`triggeredBy = 'schedule-now'`,
/// no due time, no ledger row) and makes it the schedule's latest run.
pub fn insert_run_now(
    tx: &Transaction<'_>,
    name: &str,
    job: &str,
    parameters: &str,
    metadata: &str,
    now: &str,
) -> Result<i64> {
    let op = "run schedule now";
    tx.prepare_cached(
        "INSERT INTO JobRun (jobName, parameters, triggeredBy, metadata, scheduleName, status, \
         createdAt, updatedAt) VALUES (?1, ?2, 'schedule-now', ?3, ?4, 'QUEUED', ?5, ?5)",
    )
    .and_then(|mut s| s.execute(params![job, parameters, metadata, name, now]))
    .map_err(Error::db(op))?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO ScheduleState (scheduleName, since, lastRunId, updatedAt) VALUES (?1, ?2, ?3, ?2) \
         ON CONFLICT (scheduleName) DO UPDATE SET lastRunId = excluded.lastRunId, \
           updatedAt = excluded.updatedAt",
        params![name, now, id],
    )
    .map_err(Error::db(op))?;
    if super::counts::by_hand(tx)? {
        super::counts::add_inserted(tx, 1)?;
    }
    Ok(id)
}
