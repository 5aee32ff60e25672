//! The API's edits of schedules: create, replace, delete, pause and run
//! now, each in the caller's transaction (which also holds its audit row).

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::schedule::Schedule;

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
        .and_then(|mut st| execute(&mut st, s, now))
        .map_err(Error::db(op))?;
    if n == 1 {
        restart(tx, &sc.name, now)?;
    }
    Ok(n == 1)
}

/// Runs an insert or update whose placeholders are, in order: name, job,
/// cron, timezone, parameters, missed, maxCatchUp, overlap, enabled, now.
fn execute(
    st: &mut rusqlite::Statement<'_>,
    s: &NewSchedule<'_>,
    now: &str,
) -> rusqlite::Result<usize> {
    let sc = s.schedule;
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
}

/// Replaces an API schedule's fields. False when there is none.
pub fn update(tx: &Transaction<'_>, s: &NewSchedule<'_>, now: &str) -> Result<bool> {
    tx.prepare_cached(
        "UPDATE Schedule SET job = ?2, cron = ?3, timezone = ?4, parameters = ?5, missed = ?6, \
         maxCatchUp = ?7, overlap = ?8, enabled = ?9, updatedAt = ?10 WHERE name = ?1",
    )
    .and_then(|mut st| execute(&mut st, s, now))
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
    // A QUEUED run with the id SQLite chose: no counter moves (see `counts`).
    Ok(id)
}
