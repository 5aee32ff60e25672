//! The failure groups behind `GET /api/errors`: the FAILED runs of a window
//! grouped by job type and by their message with numbers and ids masked
//! ([`crate::query::error_key`]).
//!
//! The window is one range of `JobRun_failed` (V22), which carries each
//! failure's type and message, so no run is read. SQLite would group it by
//! sorting every failure of the window (most of the cost once the row
//! lookups are gone); the groups are few, so they are gathered here in a
//! hash map instead, first by the message as written (every failure of a
//! busy day often has one of a handful) and then by its mask, which is
//! computed once per distinct message rather than once per failure.

use std::collections::HashMap;
use std::fmt::Write;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::error::{Error, Result};
use crate::query::{ErrorGroup, error_key, error_search};

/// The FAILED runs finished at or after ?1, as (type, message, finish,
/// id), from the covering index alone (public for the query-plan test).
pub const FAILED_SINCE: &str = "SELECT jobName, error, finishedAt, id \
     FROM JobRun INDEXED BY JobRun_failed WHERE status = 'FAILED' AND finishedAt >= ?1";

/// What one group (by message as written, then by mask) has gathered.
#[derive(Debug, Default)]
struct Tally {
    count: i64,
    last_at: Option<String>,
    last_run_id: i64,
    /// The message of the run `last_run_id`.
    newest_error: Option<String>,
}

impl Tally {
    /// Counts one failure. The window comes in finish order, so nearly
    /// every failure is its group's newest: the strings are overwritten in
    /// place rather than allocated again.
    fn add(&mut self, finished_at: Option<&str>, id: i64, error: Option<&str>) {
        self.count += 1;
        if finished_at > self.last_at.as_deref() {
            overwrite(&mut self.last_at, finished_at);
        }
        if id > self.last_run_id {
            self.last_run_id = id;
            overwrite(&mut self.newest_error, error);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.count += other.count;
        if other.last_at > self.last_at {
            self.last_at = other.last_at;
        }
        if other.last_run_id > self.last_run_id {
            self.last_run_id = other.last_run_id;
            self.newest_error = other.newest_error;
        }
    }
}

fn overwrite(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(held), Some(v)) => {
            held.clear();
            held.push_str(v);
        }
        (_, v) => *slot = v.map(str::to_string),
    }
}

/// FAILED runs finished since `since`, grouped by job type and masked
/// error, most recent group first (by last finish, then by newest run),
/// at most `limit` groups. Each group shows its newest run's message.
pub fn error_groups(conn: &Connection, since: &str, limit: usize) -> Result<Vec<ErrorGroup>> {
    let op = "group failures";
    let mut by_pattern: HashMap<(String, Option<String>), Tally> = HashMap::new();
    for w in by_message(conn, since).map_err(Error::db(op))? {
        let pattern = w.error.as_deref().map(error_key);
        by_pattern
            .entry((w.job, pattern))
            .or_default()
            .merge(w.tally);
    }
    let mut groups: Vec<ErrorGroup> = by_pattern
        .into_iter()
        .map(|((job_name, pattern), t)| ErrorGroup {
            job_name,
            error: t.newest_error,
            search: pattern.as_deref().and_then(error_search),
            pattern,
            count: t.count,
            last_at: t.last_at,
            last_run_id: t.last_run_id,
        })
        .collect();
    groups.sort_by(|a, b| {
        (b.last_at.as_deref(), b.last_run_id).cmp(&(a.last_at.as_deref(), a.last_run_id))
    });
    groups.truncate(limit);
    Ok(groups)
}

/// One (type, message as written) of the window and its tally.
struct Written {
    job: String,
    error: Option<String>,
    tally: Tally,
}

/// The window's failures tallied by (type, message as written). A failure
/// like the one before it (an outage fails many runs alike in a row) is
/// counted without a look-up; any other is looked up through one reused
/// key buffer, so a type and message seen before allocate nothing.
fn by_message(conn: &Connection, since: &str) -> rusqlite::Result<Vec<Written>> {
    let mut stmt = conn.prepare_cached(FAILED_SINCE)?;
    let mut rows = stmt.query([since])?;
    let mut seen: Vec<Written> = Vec::new();
    // Key: the type's length in bytes, `:`, the type, then `-` for no
    // message or `+` and the message, so that no type name or message,
    // whatever it holds, makes two keys alike.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut key = String::new();
    let mut last: Option<usize> = None;
    while let Some(r) = rows.next()? {
        let job = text(r, 0)?.unwrap_or_default();
        let error = text(r, 1)?;
        let finished_at = text(r, 2)?;
        let id: i64 = r.get(3)?;
        let same = last.filter(|&i| seen[i].job == job && seen[i].error.as_deref() == error);
        let at = match same {
            Some(i) => i,
            None => {
                key.clear();
                let _ = write!(key, "{}:{job}", job.len());
                match error {
                    Some(e) => {
                        key.push('+');
                        key.push_str(e);
                    }
                    None => key.push('-'),
                }
                match index.get(key.as_str()) {
                    Some(&i) => i,
                    None => {
                        index.insert(key.clone(), seen.len());
                        seen.push(Written {
                            job: job.to_string(),
                            error: error.map(str::to_string),
                            tally: Tally::default(),
                        });
                        seen.len() - 1
                    }
                }
            }
        };
        seen[at].tally.add(finished_at, id, error);
        last = Some(at);
    }
    Ok(seen)
}

/// A text column, NULL as None, borrowed from the row.
fn text<'r>(row: &'r rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<&'r str>> {
    let v = row.get_ref(idx)?;
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) | ValueRef::Blob(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|e| rusqlite::Error::Utf8Error(idx, e)),
        ValueRef::Integer(_) | ValueRef::Real(_) => Err(rusqlite::Error::InvalidColumnType(
            idx,
            "text".into(),
            v.data_type(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, TestFile, open_connection};

    fn failed(conn: &Connection, job: &str, at: &str, error: Option<&str>) {
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, startedAt, finishedAt, \
             error) VALUES (?1, 'FAILED', ?2, ?2, ?2, ?2, ?3)",
            rusqlite::params![job, at, error],
        )
        .unwrap();
    }

    #[test]
    fn failures_group_by_type_and_mask_newest_first() {
        let file = TestFile::new("failure-groups");
        Store::open(&file.db()).unwrap();
        let conn = open_connection(&file.db()).unwrap();
        let t = |s: u32| format!("2026-12-01T10:00:{s:02}.000Z");
        failed(&conn, "import", &t(0), Some("timeout at row 1"));
        failed(&conn, "import", &t(1), Some("timeout at row 22"));
        failed(&conn, "import", &t(2), Some("timeout at row 1"));
        failed(&conn, "import", &t(3), None);
        failed(&conn, "feed", &t(4), Some("timeout at row 3"));
        // Types and messages that a naive key would run together.
        failed(&conn, "a:1", &t(5), Some("x"));
        failed(&conn, "a", &t(6), Some("1:x"));
        // Before the window.
        failed(
            &conn,
            "import",
            "2026-12-01T09:59:59.999Z",
            Some("timeout at row 9"),
        );
        conn.execute(
            "INSERT INTO JobRun (jobName, status, createdAt, updatedAt, finishedAt, error) \
             VALUES ('import', 'COMPLETED', ?1, ?1, ?1, 'row 5 invalid')",
            [t(7)],
        )
        .unwrap();

        let groups = error_groups(&conn, &t(0), 10).unwrap();
        let seen: Vec<(&str, Option<&str>, i64, Option<&str>)> = groups
            .iter()
            .map(|g| {
                let error = g.error.as_deref();
                (g.job_name.as_str(), g.pattern.as_deref(), g.count, error)
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a", Some("N:x"), 1, Some("1:x")),
                ("a:1", Some("x"), 1, Some("x")),
                (
                    "feed",
                    Some("timeout at row N"),
                    1,
                    Some("timeout at row 3")
                ),
                ("import", None, 1, None),
                (
                    "import",
                    Some("timeout at row N"),
                    3,
                    Some("timeout at row 1")
                ),
            ]
        );
        let import = &groups[4];
        assert_eq!(import.last_at.as_deref(), Some(t(2).as_str()));
        assert_eq!(import.search.as_deref(), Some("timeout at row"));
        assert_eq!(error_groups(&conn, &t(0), 2).unwrap().len(), 2);
        assert!(error_groups(&conn, &t(7), 10).unwrap().is_empty());
    }
}
