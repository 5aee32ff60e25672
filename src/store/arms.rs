//! The runs a history filter selects, as one compound SELECT whose arms
//! each walk an index range in id order, so that SQLite merges them
//! (`MERGE (UNION ALL)`) for the history's "newest first" and the bulk
//! actions' "oldest first" instead of sorting.
//!
//! `JobRun_status_id` holds every status but QUEUED (V20): a filtered
//! status is one arm on it, `status = '<S>'` written out so that SQLite can
//! prove the partial index applies. QUEUED runs are only in
//! `JobRun_queue_type` (jobName, priority DESC, id), whose ranges of one
//! job type and one priority are each in id order: QUEUED is one arm per
//! such group, found by a skip-scan of the index ([`queue_groups`]), a few
//! seeks per group however long the queue.
//!
//! `JobRun_name_id` (jobName, id) holds neither QUEUED nor RUNNING runs
//! (V23): a job type's runs of every status are one arm on it
//! ([`AT_REST`] written out), one of its RUNNING runs on `JobRun_status_id`
//! and its QUEUED groups.

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use super::runs::RunFilter;
use crate::error::{Error, Result};
use crate::job::JobStatus;

/// The condition of the partial index `JobRun_name_id` (V23), word for
/// word: every status but QUEUED and RUNNING. A query that names it may use
/// the index (SQLite proves a partial index applies only from a term that
/// is or implies its condition).
pub const AT_REST: &str = "(status = 'COMPLETED' OR status = 'FAILED' OR status = 'CANCELLED' \
     OR status = 'SCHEDULED' OR status = 'WAITING')";

/// The most QUEUED groups walked as arms of their own. SQLite allows 500
/// arms in a compound SELECT; past this many (job types × priorities with
/// queued runs), QUEUED is one arm over the whole queue index, which the
/// caller's ORDER BY then sorts: bounded by the queue, never the history.
const MAX_GROUPS: usize = 200;

/// Queued runs of one job type and one priority: one id-ordered range of
/// `JobRun_queue_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup {
    pub name: String,
    pub priority: i64,
}

/// The job types (only `name`, when given) and priorities that have queued
/// runs, in index order. Two seeks per group.
pub fn queue_groups(conn: &Connection, name: Option<&str>) -> Result<Vec<QueueGroup>> {
    let op = "read the queue's job types";
    let mut next_name = conn
        .prepare_cached(
            "SELECT jobName FROM JobRun INDEXED BY JobRun_queue_type \
             WHERE status = 'QUEUED' AND jobName > ?1 ORDER BY jobName LIMIT 1",
        )
        .map_err(Error::db(op))?;
    let mut next_priority = conn
        .prepare_cached(
            "SELECT priority FROM JobRun INDEXED BY JobRun_queue_type \
             WHERE status = 'QUEUED' AND jobName = ?1 AND priority < ?2 \
             ORDER BY priority DESC LIMIT 1",
        )
        .map_err(Error::db(op))?;
    let mut groups = Vec::new();
    let mut names = Vec::new();
    match name {
        Some(n) => names.push(n.to_string()),
        None => {
            let mut after = String::new();
            loop {
                let found: Option<String> = next_name
                    .query_row([&after], |r| r.get(0))
                    .optional()
                    .map_err(Error::db(op))?;
                let Some(found) = found else { break };
                after.clone_from(&found);
                names.push(found);
            }
        }
    }
    for name in names {
        let mut below = i64::MAX;
        loop {
            let found: Option<i64> = next_priority
                .query_row(rusqlite::params![name, below], |r| r.get(0))
                .optional()
                .map_err(Error::db(op))?;
            let Some(p) = found else { break };
            groups.push(QueueGroup {
                name: name.clone(),
                priority: p,
            });
            // i64::MIN is the lowest there is: nothing below it.
            if p == i64::MIN {
                break;
            }
            below = p;
        }
    }
    Ok(groups)
}

/// One compound SELECT over the runs of `filter`.
pub struct Arms<'a> {
    /// `SELECT <columns>` of every arm (`id` among them when the caller
    /// orders the compound).
    pub head: &'a str,
    pub filter: &'a RunFilter,
    /// Conditions (` AND …`) every arm gets, with their arguments.
    pub extra: Vec<(String, Vec<Value>)>,
    /// The queue's groups when the caller orders by id; None when it does
    /// not (a count), and QUEUED is then one walk of the queue index.
    pub groups: Option<&'a [QueueGroup]>,
}

impl Arms<'_> {
    /// The compound's SQL (to which the caller adds ORDER BY and LIMIT)
    /// and its arguments.
    pub fn sql(&self) -> (String, Vec<Value>) {
        let mut arms: Vec<String> = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        let mut statuses: Vec<JobStatus> = Vec::new();
        for s in &self.filter.statuses {
            if !statuses.contains(s) {
                statuses.push(*s);
            }
        }
        if statuses.is_empty() {
            if self.filter.name.is_some() {
                // One type's runs: those at rest on JobRun_name_id, the
                // running ones on JobRun_status_id (a few, however long
                // the history), the queued ones on the queue index.
                self.arm(&mut arms, &mut args, "", AT_REST, &[]);
                self.arm(&mut arms, &mut args, "", "status = 'RUNNING'", &[]);
                self.queued_arms(&mut arms, &mut args);
            } else {
                self.arm(&mut arms, &mut args, "", "1 = 1", &[]);
            }
        }
        for s in statuses {
            if s == JobStatus::Queued {
                self.queued_arms(&mut arms, &mut args);
                continue;
            }
            // A literal from the enum, never input: it is what lets
            // SQLite use the partial index.
            let cond = format!("status = '{}'", s.as_str());
            self.arm(&mut arms, &mut args, "", &cond, &[]);
        }
        if arms.is_empty() {
            // Only QUEUED asked for, and nothing is queued.
            self.arm(&mut arms, &mut args, "", "0", &[]);
        }
        (arms.join(" UNION ALL "), args)
    }

    /// The QUEUED runs: one arm per queue group when the caller orders by
    /// id, else one walk of the queue index.
    fn queued_arms(&self, arms: &mut Vec<String>, args: &mut Vec<Value>) {
        let queue = " INDEXED BY JobRun_queue_type";
        match self.groups.filter(|g| g.len() <= MAX_GROUPS) {
            Some(groups) => {
                for g in groups {
                    let bound = [Value::from(g.name.as_str()), Value::from(g.priority)];
                    let cond = "status = 'QUEUED' AND jobName = ? AND priority = ?";
                    self.arm(arms, args, queue, cond, &bound);
                }
            }
            None => self.arm(arms, args, queue, "status = 'QUEUED'", &[]),
        }
    }

    fn arm(
        &self,
        arms: &mut Vec<String>,
        args: &mut Vec<Value>,
        indexed: &str,
        cond: &str,
        bound: &[Value],
    ) {
        let mut sql = format!("{} FROM JobRun{indexed} WHERE {cond}", self.head);
        args.extend_from_slice(bound);
        super::runs::filter_clauses(self.filter, &mut sql, args);
        for (clause, values) in &self.extra {
            sql.push_str(clause);
            args.extend(values.iter().cloned());
        }
        arms.push(sql);
    }
}

/// The queue's groups, when `filter` asks for QUEUED runs in id order
/// (asking for a type's runs of every status asks for its queued ones).
pub fn groups_for(conn: &Connection, filter: &RunFilter) -> Result<Vec<QueueGroup>> {
    let every_status_of_a_type = filter.statuses.is_empty() && filter.name.is_some();
    if filter.statuses.contains(&JobStatus::Queued) || every_status_of_a_type {
        queue_groups(conn, filter.name.as_deref())
    } else {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::bulk::{self, Selection};
    use crate::store::{Store, TestFile, history, runs, stats};

    /// Runs of three types, with several priorities, in every status, their
    /// ids interleaved so that no arm is in id order with another.
    fn mixed(file: &TestFile) -> Connection {
        Store::open(&file.db()).unwrap();
        let conn = crate::store::open_connection(&file.db()).unwrap();
        let statuses = [
            "QUEUED",
            "FAILED",
            "QUEUED",
            "RUNNING",
            "COMPLETED",
            "QUEUED",
            "WAITING",
        ];
        for i in 0..140i64 {
            let name = ["a", "b", "c"][(i % 3) as usize];
            let status = statuses[(i % 7) as usize];
            let priority = [0, 5, -3, 0][(i / 3 % 4) as usize];
            conn.execute(
                "INSERT INTO JobRun (jobName, status, priority, createdAt, updatedAt) \
                 VALUES (?1, ?2, ?3, 't', 't')",
                rusqlite::params![name, status, priority],
            )
            .unwrap();
        }
        conn
    }

    fn ids(conn: &Connection, sql: &str) -> Vec<i64> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn filter(statuses: &[JobStatus], name: Option<&str>) -> RunFilter {
        RunFilter {
            statuses: statuses.to_vec(),
            name: name.map(Into::into),
            limit: 7,
            ..RunFilter::default()
        }
    }

    /// What the filter selects, read without any index, as SQL to append to.
    fn reference(f: &RunFilter) -> String {
        let mut sql = String::from("SELECT id FROM JobRun NOT INDEXED WHERE 1 = 1");
        if !f.statuses.is_empty() {
            let list: Vec<String> = f.statuses.iter().map(|s| format!("'{s}'")).collect();
            sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        if let Some(n) = &f.name {
            sql.push_str(&format!(" AND jobName = '{n}'"));
        }
        sql
    }

    /// A type's history walks AT_REST, RUNNING and QUEUED: every status
    /// once.
    #[test]
    fn at_rest_names_every_status_but_queued_and_running() {
        for s in JobStatus::ALL {
            let named = AT_REST.contains(&format!("status = '{}'", s.as_str()));
            let active = matches!(s, JobStatus::Queued | JobStatus::Running);
            assert_eq!(named, !active, "{s}");
        }
    }

    #[test]
    fn every_walk_returns_what_a_scan_of_the_table_returns() {
        let file = TestFile::new("arms");
        let conn = mixed(&file);
        let (q, f) = (JobStatus::Queued, JobStatus::Failed);
        let filters = [
            filter(&[q], None),
            filter(&[q, f], None),
            filter(&[f, q, JobStatus::Waiting], Some("b")),
            filter(&[q], Some("c")),
            filter(&[JobStatus::Running], None),
            filter(&[], Some("a")),
            filter(&[], None),
        ];
        for base in filters {
            let want_all = ids(&conn, &format!("{} ORDER BY id DESC", reference(&base)));
            // The history, newest first, page by page.
            let mut got = Vec::new();
            let mut page = base.clone();
            loop {
                let rows = runs::list_runs(&conn, &page).unwrap();
                got.extend(rows.iter().map(|r| r.id));
                match rows.last() {
                    Some(last) if rows.len() == page.limit => page.before_id = Some(last.id),
                    _ => break,
                }
            }
            assert_eq!(got, want_all, "history of {base:?}");
            assert_eq!(
                history::count_bounded(&conn, &base, 1000).unwrap(),
                want_all.len(),
                "count of {base:?}"
            );
            // A bulk action's batches, oldest first.
            let sel = Selection {
                filter: &base,
                upto: 120,
                not_rerun: false,
            };
            let (mut got, mut after) = (Vec::new(), 0);
            loop {
                let batch = bulk::next_batch(&conn, &sel, after, 6).unwrap();
                got.extend(batch.iter().map(|r| r.id));
                match batch.last() {
                    Some(last) => after = last.id,
                    None => break,
                }
            }
            let want = ids(
                &conn,
                &format!("{} AND id <= 120 ORDER BY id", reference(&base)),
            );
            assert_eq!(got, want, "batches of {base:?}");
            assert_eq!(bulk::count(&conn, &sel, None).unwrap(), want.len() as i64);
        }
        for status in [q, JobStatus::Waiting] {
            let got: Vec<i64> = runs::runs_in_status(&conn, status, 9)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect();
            let sql = format!(
                "{} ORDER BY id LIMIT 9",
                reference(&filter(&[status], None))
            );
            assert_eq!(got, ids(&conn, &sql), "{status} runs, oldest first");
        }
        let unfinished: Vec<(String, String, i64)> = stats::unfinished(&conn)
            .unwrap()
            .into_iter()
            .map(|u| (u.job, u.status, u.n))
            .collect();
        let mut stmt = conn
            .prepare(
                "SELECT jobName, status, count(*) FROM JobRun NOT INDEXED \
                 WHERE status IN ('SCHEDULED', 'WAITING', 'QUEUED', 'RUNNING') \
                 GROUP BY jobName, status ORDER BY jobName, status",
            )
            .unwrap();
        let want: Vec<(String, String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(unfinished, want);
        assert_eq!(
            queue_groups(&conn, None).unwrap().len(),
            9,
            "three types, three priorities each"
        );
    }
}
