//! How many runs the history's filter matches, counted without reading
//! the runs when the filter allows it.

use rusqlite::{Connection, params_from_iter};
use serde_json::Value;

use super::runs::{RunFilter, filter_clauses, sql_value};
use crate::error::{Error, Result};

/// Counts the runs `filter` matches (its cursor and limit aside), stopping
/// at `cap + 1`: the answer is exact up to `cap`, and past it the count
/// says so (`Some(cap + 1)` means "more than `cap`"). The walk is the
/// history query's own, so it costs what reading `cap` rows of it costs.
pub fn count_bounded(conn: &Connection, filter: &RunFilter, cap: usize) -> Result<usize> {
    let mut sql = String::from("SELECT count(*) FROM (SELECT 1 FROM JobRun WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    filter_clauses(filter, &mut sql, &mut args);
    sql.push_str(" LIMIT ?)");
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
