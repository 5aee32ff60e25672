//! Queries on `JobLog` for readers: a run's lines with level, text and
//! cursor filters, always in (timestamp, id) order through the run's index.

use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::rows::{LOG_COLUMNS, log_from_row};
use crate::error::{Error, Result};
use crate::job::{LogLevel, LogLine};

pub use crate::query::LogFilter;

/// The reader's query for one run's lines, oldest first (for the plan test).
#[cfg(test)]
pub const RUN_LOG_PLAN_SQL: &str =
    "SELECT id, level, message FROM JobLog WHERE jobRunId = 1 ORDER BY timestamp, id LIMIT 100";

/// One run's log lines for `filter`, oldest first.
pub fn list_logs(conn: &Connection, run_id: i64, filter: &LogFilter) -> Result<Vec<LogLine>> {
    let mut sql = format!("SELECT {LOG_COLUMNS} FROM JobLog WHERE jobRunId = ?");
    let mut args: Vec<rusqlite::types::Value> = vec![run_id.into()];
    if let Some(after) = filter.after_id {
        // The cursor is a line id; the index orders by (timestamp, id), so
        // continue from that line's place with a row-value comparison.
        let ts: Option<String> = conn
            .query_row("SELECT timestamp FROM JobLog WHERE id = ?1", [after], |r| {
                r.get(0)
            })
            .optional()
            .map_err(Error::db("read log cursor"))?;
        if let Some(ts) = ts {
            sql.push_str(" AND (timestamp, id) > (?, ?)");
            args.push(ts.into());
            args.push(after.into());
        } else {
            sql.push_str(" AND id > ?");
            args.push(after.into());
        }
    }
    if let Some(min) = filter.min_level.filter(|l| *l > LogLevel::Debug) {
        let levels: Vec<&str> = LogLevel::ALL
            .into_iter()
            .filter(|l| *l >= min)
            .map(LogLevel::as_str)
            .collect();
        sql.push_str(&format!(
            " AND level IN ({})",
            vec!["?"; levels.len()].join(", ")
        ));
        args.extend(levels.into_iter().map(|l| l.to_string().into()));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
        sql.push_str(" AND instr(lower(message), lower(?)) > 0");
        args.push(q.to_string().into());
    }
    sql.push_str(" ORDER BY timestamp, id LIMIT ?");
    args.push((filter.limit as i64).into());
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::db("read logs"))?;
    let rows = stmt
        .query_map(params_from_iter(args), log_from_row)
        .map_err(Error::db("read logs"))?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(Error::db("read logs"))
}
