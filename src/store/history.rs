//! How many runs the history's filter matches, counted without reading
//! the runs when the filter allows it.

use rusqlite::{Connection, params_from_iter};
use serde_json::Value;

use super::arms::Arms;
use super::runs::{RunFilter, sql_value};
use crate::error::{Error, Result};

/// Counts the runs `filter` matches (its cursor and limit aside), stopping
/// at `cap + 1`: the answer is exact up to `cap`, and past it the count
/// says so (`Some(cap + 1)` means "more than `cap`"). The walk is the
/// history query's own, so it costs what reading `cap` rows of it costs.
pub fn count_bounded(conn: &Connection, filter: &RunFilter, cap: usize) -> Result<usize> {
    // Unordered: QUEUED is one walk of the queue index (see `arms`).
    let arms = Arms {
        head: "SELECT 1",
        filter,
        extra: Vec::new(),
        groups: None,
    };
    let (arms, mut args) = arms.sql();
    let sql = format!("SELECT count(*) FROM ({arms} LIMIT ?)");
    args.push(Value::from(cap as i64 + 1));
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(args.iter().map(sql_value)), |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n.max(0) as usize)
        .map_err(Error::db("count matching runs"))
}
