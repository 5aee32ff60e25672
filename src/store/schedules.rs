//! Queries on `Schedule`, `ScheduleState` and the `ScheduleTick` ledger:
//! the schedules made through the API, what the scheduler keeps per
//! schedule, and the one transaction that records a pass's decisions with
//! the runs they make. The API's edits are in [`super::schedule_edits`].

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
}

/// What the scheduler keeps for one schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub paused: bool,
    pub since: String,
    pub last_due: Option<String>,
    pub waiting: Option<String>,
    pub last_run: Option<LastRun>,
    /// Whether the schedule was enabled when the scheduler last looked.
    pub enabled: bool,
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
    /// Whether the schedule is enabled now.
    pub enabled: bool,
    /// Due times count from `since` again (the schedule was enabled again).
    pub restart: bool,
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

/// A row of the `Schedule` table as stored, before it is read as a
/// [`Schedule`] (the scheduler parses only rows that changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    job: String,
    cron: String,
    timezone: String,
    parameters: String,
    missed: String,
    max_catch_up: i64,
    overlap: String,
    enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl Row {
    /// The schedule, or why the row does not read as one (edited by hand).
    pub fn parse(&self) -> std::result::Result<Schedule, String> {
        Ok(Schedule {
            name: self.name.clone(),
            job: self.job.clone(),
            cron: CronExpr::parse(&self.cron).map_err(|e| format!("cron '{}': {e}", self.cron))?,
            zone: schedule::parse_zone(&self.timezone)?,
            parameters: serde_json::from_str(&self.parameters)
                .map_err(|e| format!("parameters: {e}"))?,
            missed: Missed::parse(&self.missed)?,
            max_catch_up: schedule::check_catch_up(self.max_catch_up)?,
            overlap: Overlap::parse(&self.overlap)?,
            enabled: self.enabled,
            source: Source::Api,
        })
    }

    fn stored(self) -> Stored {
        Stored {
            schedule: self.parse(),
            name: self.name,
        }
    }
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        name: r.get(0)?,
        job: r.get(1)?,
        cron: r.get(2)?,
        timezone: r.get(3)?,
        parameters: r.get(4)?,
        missed: r.get(5)?,
        max_catch_up: r.get(6)?,
        overlap: r.get(7)?,
        enabled: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// Every row of the `Schedule` table, by name.
pub fn rows(conn: &Connection) -> Result<Vec<Row>> {
    let op = "list schedules";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM Schedule ORDER BY name"
        ))
        .map_err(Error::db(op))?;
    let rows = stmt.query_map([], row_from).map_err(Error::db(op))?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::db(op))
}

/// Every schedule of the `Schedule` table, by name.
pub fn list(conn: &Connection) -> Result<Vec<Stored>> {
    Ok(rows(conn)?.into_iter().map(Row::stored).collect())
}

/// One schedule of the `Schedule` table.
pub fn get(conn: &Connection, name: &str) -> Result<Option<Stored>> {
    conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM Schedule WHERE name = ?1"
    ))
    .and_then(|mut s| s.query_row([name], row_from).optional())
    .map(|r| r.map(Row::stored))
    .map_err(Error::db("read schedule"))
}

/// Changes whenever a schedule or a state is added, edited or deleted
/// (counts and newest `updatedAt`, each an index look-up): the scheduler
/// re-reads everything only when it changes.
pub fn change_mark(conn: &Connection) -> Result<String> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM Schedule) || '/' || \
                (SELECT coalesce(max(updatedAt), '') FROM Schedule) || '/' || \
                (SELECT count(*) FROM ScheduleState) || '/' || \
                (SELECT coalesce(max(updatedAt), '') FROM ScheduleState)",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(Error::db("read schedule changes"))
}

/// The status of run `id`; None when there is no such run.
pub fn run_status(conn: &Connection, id: i64) -> Result<Option<JobStatus>> {
    conn.prepare_cached("SELECT status FROM JobRun WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get::<_, String>(0)).optional())
        .map(|o| o.as_deref().and_then(JobStatus::parse))
        .map_err(Error::db("read run status"))
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
            enabled: r.get(8)?,
        },
    ))
}

const STATE_SELECT: &str = "SELECT s.scheduleName, s.paused, s.since, s.lastDueAt, \
     s.waitingDueAt, s.lastRunId, r.status, r.scheduledFor, s.enabled \
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
    // Ledger rows per (schedule, outcome), for the metrics' counters.
    let mut counted = std::collections::BTreeMap::new();
    for w in writes {
        let mut last_run = None;
        for t in &w.ticks {
            let inserted = tick
                .execute(params![w.name, t.due, now, t.outcome.as_str(), t.reason])
                .map_err(Error::db(op))?;
            out.ticks += inserted;
            if inserted > 0 {
                *counted
                    .entry((w.name.clone(), t.outcome.as_str()))
                    .or_insert(0) += inserted as i64;
            }
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
        save_state(tx, w, last_run, now)?;
    }
    // QUEUED runs with ids SQLite chose: no counter moves (see `counts`).
    super::stats::count_ticks(tx, &counted)?;
    Ok(out)
}

fn save_state(
    tx: &Transaction<'_>,
    w: &ScheduleWrite,
    last_run: Option<i64>,
    now: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ScheduleState (scheduleName, since, lastDueAt, waitingDueAt, lastRunId, \
         updatedAt, enabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (scheduleName) DO UPDATE SET \
           since = CASE WHEN ?8 THEN excluded.since ELSE since END, \
           enabled = excluded.enabled, \
           lastDueAt = CASE WHEN lastDueAt IS NULL OR excluded.lastDueAt > lastDueAt \
                       THEN excluded.lastDueAt ELSE lastDueAt END, \
           waitingDueAt = excluded.waitingDueAt, \
           lastRunId = coalesce(excluded.lastRunId, lastRunId), \
           updatedAt = excluded.updatedAt",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.name, w.since, w.last_due, w.waiting, last_run, now, w.enabled, w.restart
        ])
    })
    .map(|_| ())
    .map_err(Error::db("save schedule state"))
}

/// The id of the newest ledger row (0 when there is none).
pub fn newest_tick(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM ScheduleTick")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(Error::db("read schedule ledger"))
}

#[cfg(test)]
mod tests;
