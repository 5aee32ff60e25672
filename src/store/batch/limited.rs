//! The claim when limits apply (a type's `max_running`, a group's, a
//! paused type): the writer says how many of each type it may start, and
//! this claim probes the queued runs of each such type through
//! `JobRun_queue_type` (one short index range per type, never the runs
//! waiting behind a full limit), merges them in queue order (priority,
//! then id) and takes them while their type's and group's room lasts.

use super::{Claimant, ClaimedRun, claims};
use crate::error::{Error, Result};
use rusqlite::Transaction;

/// A type the claim may start runs of.
#[derive(Debug, Clone)]
pub struct TypeRoom {
    pub name: String,
    /// At most this many of its runs.
    pub room: usize,
    /// Its group, an index into [`Limits::groups`].
    pub group: Option<usize>,
}

/// What the claim may start: the types (paused ones and those whose limit
/// is full left out) and the room left in each group.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub types: Vec<TypeRoom>,
    pub groups: Vec<usize>,
}

/// The queued runs of one type, in queue order; the claim reads only as
/// many as it may start (the index gives them in order, nothing is
/// sorted). No `LIMIT ?`: SQLite plans with a bound LIMIT's value, so a
/// new value expired the statement and every commit compiled it again
/// (callgrind: 81k instructions a commit, 3k a `process-real` run).
pub const TYPE_QUEUE_SQL: &str = "SELECT id, jobName, attempt, priority, parameters FROM JobRun \
     INDEXED BY JobRun_queue_type WHERE status = 'QUEUED' AND jobName = ?1 \
     ORDER BY priority DESC, id";

/// Claims up to `n` runs within `limits`.
pub(super) fn claim_limited(
    tx: &Transaction<'_>,
    me: &Claimant,
    limits: &Limits,
    n: usize,
    now: &str,
) -> Result<Vec<ClaimedRun>> {
    // Every registered type may be in `limits`; most have nothing queued.
    // The skip-scan names those that do in one seek each, cheaper than a
    // probe of each type's queue (a commit probed a dozen empty ones).
    let queued = claims::queued_types(tx)?;
    let with_runs: Vec<bool> = limits
        .types
        .iter()
        .map(|t| queued.binary_search(&t.name).is_ok())
        .collect();
    claim_in_order(tx, me, limits, &with_runs, n, now)
}

/// Claims up to `n` runs within `limits`, probing only the types marked
/// in `with_runs` (one flag per type of `limits`).
pub(super) fn claim_in_order(
    tx: &Transaction<'_>,
    me: &Claimant,
    limits: &Limits,
    with_runs: &[bool],
    n: usize,
    now: &str,
) -> Result<Vec<ClaimedRun>> {
    let mut candidates: Vec<(usize, ClaimedRun)> = Vec::new();
    let mut stmt = tx
        .prepare_cached(TYPE_QUEUE_SQL)
        .map_err(Error::db("claim runs"))?;
    for (i, t) in limits.types.iter().enumerate() {
        if !with_runs[i] {
            continue;
        }
        // A type never starts more than its group has room for: reading
        // `n` candidates to start one cost a full claim's reads per type.
        let group_room = t.group.map_or(usize::MAX, |g| {
            limits.groups.get(g).copied().unwrap_or(usize::MAX)
        });
        let room = t.room.min(n).min(group_room);
        if room == 0 {
            continue;
        }
        let rows = stmt
            .query_map([&t.name], |r| {
                Ok(ClaimedRun {
                    id: r.get(0)?,
                    worker_id: me.worker_id,
                    job_name: r.get(1)?,
                    attempt: r.get(2)?,
                    priority: r.get(3)?,
                    parameters: r.get(4)?,
                })
            })
            .and_then(|rows| rows.take(room).collect::<rusqlite::Result<Vec<_>>>())
            .map_err(Error::db("claim runs"))?;
        candidates.extend(rows.into_iter().map(|r| (i, r)));
    }
    candidates.sort_by(|a, b| b.1.priority.cmp(&a.1.priority).then(a.1.id.cmp(&b.1.id)));
    let mut type_room: Vec<usize> = limits.types.iter().map(|t| t.room).collect();
    let mut group_room = limits.groups.clone();
    let mut chosen = Vec::with_capacity(n.min(candidates.len()));
    for (i, run) in candidates {
        if chosen.len() == n {
            break;
        }
        let group = limits.types[i].group;
        if type_room[i] == 0 || group.is_some_and(|g| group_room[g] == 0) {
            continue;
        }
        type_room[i] -= 1;
        if let Some(g) = group {
            group_room[g] -= 1;
        }
        chosen.push(run);
    }
    claims::mark_claimed(tx, me, &chosen, now)?;
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::store::batch::{Batch, commit};

    #[test]
    fn runs_behind_a_full_limit_do_not_hold_back_other_types() {
        let file = crate::store::TestFile::new("limited");
        let db = file.db();
        crate::store::Store::open(&db).unwrap();
        let mut conn = crate::store::open_writer_connection(&db).unwrap();
        conn.execute_batch(
            "INSERT INTO Worker (id, hostname, pid, version, state, startedAt, heartbeatAt) \
             VALUES (1, 'h', 1, 'v', 'RUNNING', 'x', 'x');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO JobRun (jobName, status, priority, createdAt, updatedAt)
             SELECT 'a', 'QUEUED', 5, 'x', 'x' FROM n;
             INSERT INTO JobRun (jobName, status, createdAt, updatedAt) VALUES
               ('b', 'QUEUED', 'x', 'x'), ('c', 'QUEUED', 'x', 'x'), ('b', 'QUEUED', 'x', 'x');",
        )
        .unwrap();
        let room = |name: &str, room: usize, group: Option<usize>| TypeRoom {
            name: name.into(),
            room,
            group,
        };
        // 'a' is full (left out), 'b' may start one more, 'c' shares a
        // group with room for one.
        let b = Batch {
            claim: 32,
            limits: Some(Limits {
                types: vec![room("b", 1, None), room("c", usize::MAX, Some(0))],
                groups: vec![1],
            }),
            ..Batch::default()
        };
        let got = commit(&mut conn, &Claimant { worker_id: 1 }, &b, Timestamp::now()).unwrap();
        let names: Vec<&str> = got.claimed.iter().map(|r| r.job_name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(got.claimed[0].id, 5001, "queue order within the type");
        // With room for 'a' too, its priority puts it first.
        let b = Batch {
            claim: 3,
            limits: Some(Limits {
                types: vec![room("a", 2, None), room("b", 5, None)],
                groups: vec![],
            }),
            ..Batch::default()
        };
        let got = commit(&mut conn, &Claimant { worker_id: 1 }, &b, Timestamp::now()).unwrap();
        let names: Vec<&str> = got.claimed.iter().map(|r| r.job_name.as_str()).collect();
        assert_eq!(names, ["a", "a", "b"]);
        // Claims of other sizes run the per-type query as compiled.
        let reprepared = conn
            .prepare_cached(TYPE_QUEUE_SQL)
            .unwrap()
            .get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(reprepared, 0, "the per-type query was compiled again");
    }
}
