//! Mapping between table rows and domain types, with the column lists the
//! queries share.

use rusqlite::Row;
use serde_json::{Map, Value};

use super::runs::NewRun;
use crate::job::{JobRun, JobStatus, LogLevel, LogLine};
use crate::worker::{WorkerRow, WorkerState, WriterLoad};

/// Columns read into a [`JobRun`], in [`run_from_row`] order.
pub const RUN_COLUMNS: &str = "id, jobName, status, parameters, priority, attempt, createdAt, \
     startedAt, finishedAt, workerId, currentStage, entitiesProcessed, entitiesTotal, \
     entitiesUnit, outcomeSummary, error, errorContext, rerunOfId, triggeredBy, metadata, \
     cancelRequestedAt, updatedAt, runAt, scheduleName, scheduledFor";

/// Columns read into a [`WorkerRow`].
pub const WORKER_COLUMNS: &str = "id, hostname, pid, version, state, concurrency, startedAt, \
     heartbeatAt, stopRequestedAt, stoppingAt, stoppedAt, metadata, writerBusyUs, writerCommits, \
     writerCommitUs, writerLockWaitUs, writerSyncUs";

/// Columns read into a [`LogLine`].
pub const LOG_COLUMNS: &str = "id, jobRunId, level, stage, message, context, timestamp, attempt";

fn object(text: Option<String>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

fn json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

fn bad_enum(idx: usize, text: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        format!("unexpected value '{text}'").into(),
    )
}

/// Reads a `JobRun` row selected with [`RUN_COLUMNS`].
pub fn run_from_row(r: &Row<'_>) -> rusqlite::Result<JobRun> {
    let status: String = r.get(2)?;
    Ok(JobRun {
        id: r.get(0)?,
        job_name: r.get(1)?,
        status: JobStatus::parse(&status).ok_or_else(|| bad_enum(2, status))?,
        parameters: object(r.get(3)?),
        priority: r.get(4)?,
        attempt: r.get(5)?,
        created_at: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
        worker_id: r.get(9)?,
        current_stage: r.get(10)?,
        entities_processed: r.get(11)?,
        entities_total: r.get(12)?,
        entities_unit: r.get(13)?,
        outcome_summary: object(r.get(14)?),
        error: r.get(15)?,
        error_context: json(r.get(16)?),
        rerun_of_id: r.get(17)?,
        triggered_by: r.get(18)?,
        metadata: object(r.get(19)?),
        cancel_requested_at: r.get(20)?,
        updated_at: r.get(21)?,
        run_at: r.get(22)?,
        schedule_name: r.get(23)?,
        scheduled_for: r.get(24)?,
    })
}

/// The run `new` became when it was inserted as `id` at `now`: what
/// [`run_from_row`] would read back at once (every other column has its
/// default), so an enqueue can answer without reading its row again.
pub fn inserted_run(new: &NewRun, id: i64, now: &str) -> JobRun {
    JobRun {
        id,
        job_name: new.job_name.to_string(),
        status: if new.run_at.is_some() {
            JobStatus::Scheduled
        } else {
            JobStatus::Queued
        },
        parameters: object(Some(new.parameters.clone())),
        priority: new.priority,
        attempt: 1,
        created_at: now.to_string(),
        started_at: None,
        finished_at: None,
        worker_id: None,
        current_stage: None,
        entities_processed: 0,
        entities_total: None,
        entities_unit: None,
        outcome_summary: Map::new(),
        error: None,
        error_context: None,
        rerun_of_id: new.rerun_of,
        triggered_by: new.trigger.to_string(),
        metadata: object(Some(new.metadata.to_string())),
        cancel_requested_at: None,
        updated_at: now.to_string(),
        run_at: new.run_at.clone(),
        schedule_name: None,
        scheduled_for: None,
    }
}

/// Reads a `Worker` row selected with [`WORKER_COLUMNS`].
pub fn worker_from_row(r: &Row<'_>) -> rusqlite::Result<WorkerRow> {
    let state: String = r.get(4)?;
    Ok(WorkerRow {
        id: r.get(0)?,
        hostname: r.get(1)?,
        pid: r.get(2)?,
        version: r.get(3)?,
        state: WorkerState::parse(&state).ok_or_else(|| bad_enum(4, state))?,
        concurrency: r.get(5)?,
        started_at: r.get(6)?,
        heartbeat_at: r.get(7)?,
        stop_requested_at: r.get(8)?,
        stopping_at: r.get(9)?,
        stopped_at: r.get(10)?,
        metadata: object(r.get(11)?),
        writer: WriterLoad {
            busy_us: r.get(12)?,
            commits: r.get(13)?,
            commit_us: r.get(14)?,
            lock_wait_us: r.get(15)?,
            sync_us: r.get(16)?,
        },
    })
}

/// Reads a `JobLog` row selected with [`LOG_COLUMNS`].
pub fn log_from_row(r: &Row<'_>) -> rusqlite::Result<LogLine> {
    let level: String = r.get(2)?;
    Ok(LogLine {
        id: r.get(0)?,
        job_run_id: r.get(1)?,
        level: LogLevel::parse(&level).ok_or_else(|| bad_enum(2, level))?,
        stage: r.get(3)?,
        message: r.get(4)?,
        context: json(r.get(5)?),
        timestamp: r.get(6)?,
        attempt: r.get(7)?,
    })
}
