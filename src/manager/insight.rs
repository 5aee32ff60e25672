//! The read-only views and the audit trail the web server needs: statistics,
//! failure groups, a run's details, what changed since a moment, and the
//! record of admin actions.

use super::Manager;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobRun;
use crate::query::{AuditEntry, AuditFilter, RunFilter};
use crate::store::changes::ChangeFeed;
use crate::store::{insight, workers};
use crate::worker::WorkerRow;

pub use crate::query::{ErrorGroup, RunRef, StageMark};
pub use crate::query::{Stats, Throughput};

/// One run with its timeline and re-run chain.
#[derive(Debug, Clone)]
pub struct RunDetails {
    pub run: JobRun,
    pub stages: Vec<StageMark>,
    pub reruns: Vec<RunRef>,
    pub rerun_of: Option<RunRef>,
    /// The worker that claimed the run: its host, pid and version.
    pub worker: Option<WorkerRow>,
    /// Its earlier attempts, when its type retried it.
    pub attempts: Vec<crate::store::attempts::Attempt>,
    /// The runs it waits (or waited) for, and those that wait for it.
    pub after: Vec<crate::store::deps::Linked>,
    pub waited_for_by: Vec<crate::store::deps::Linked>,
}

/// Most runs [`Manager::count_matching`] counts one by one.
pub const MAX_COUNTED: usize = 10_000;

/// How many runs a history filter matches.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MatchCount {
    /// Exact when `exact`; otherwise the runs are more than this.
    pub count: u64,
    pub exact: bool,
    /// `counters` (the per-status counters) or `rows` (counted).
    pub counted: &'static str,
}

/// Longest window the failure groups look back over.
pub const MAX_ERROR_HOURS: i64 = 24 * 366;

impl Manager {
    /// Counts by status, runs finished in the last minute and hour, and
    /// failures in the last 24 hours.
    pub fn stats(&self) -> Result<Stats> {
        let counts = self.counts()?;
        let now = Timestamp::now();
        let conn = self.store.conn()?;
        let ago = |ms: i64| now.plus_ms(-ms);
        let [(last_minute, _), (last_hour, _), (_, failed_last24h)] =
            insight::finished_since(&conn, [ago(60_000), ago(3_600_000), ago(86_400_000)])?;
        Ok(Stats {
            counts,
            throughput: Throughput {
                last_minute,
                last_hour,
            },
            failed_last24h,
        })
    }

    /// FAILED runs of the last `hours`, grouped by job type and error.
    pub fn error_groups(&self, hours: i64) -> Result<Vec<ErrorGroup>> {
        if !(1..=MAX_ERROR_HOURS).contains(&hours) {
            return Err(Error::Invalid(format!(
                "hours must be between 1 and {MAX_ERROR_HOURS}, got {hours}"
            )));
        }
        let since = Timestamp::now().plus_ms(-hours * 3_600_000).to_text();
        crate::store::failures::error_groups(&*self.store.conn()?, &since, 200)
    }

    /// A run with its stage timeline, its re-runs and the run it re-ran.
    pub fn details(&self, id: i64) -> Result<RunDetails> {
        let run = self.get(id)?;
        let conn = self.store.conn()?;
        let rerun_of = match run.rerun_of_id {
            Some(prev) => insight::run_ref(&conn, prev)?,
            None => None,
        };
        let worker = match run.worker_id {
            Some(w) => workers::get_worker(&conn, w)?,
            None => None,
        };
        let (after, waited_for_by) = crate::store::deps::links(&conn, id)?;
        Ok(RunDetails {
            after,
            waited_for_by,
            worker,
            attempts: crate::store::attempts::attempts(&conn, id)?,
            stages: insight::stages(&conn, id)?,
            reruns: insight::reruns_of(&conn, id)?,
            rerun_of,
            run,
        })
    }

    /// A connection of its own for noticing other connections' commits.
    pub fn change_feed(&self) -> Result<ChangeFeed> {
        ChangeFeed::open(self.store.path())
    }

    /// Records an admin action that changes nothing in the database (a
    /// worker start, which spawns a process): the caller writes it first,
    /// and acts only once it is committed. Actions that change rows record
    /// theirs in their own transaction instead.
    pub fn audit(&self, by: &super::Actor, action: &'static str) -> Result<()> {
        let now = Timestamp::now().to_text();
        let row = by.row(action, None, None);
        self.store
            .write("record audit entry", |tx| row.insert(tx, &now))?;
        Ok(())
    }
    /// The audit rows `filter` selects, newest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        crate::store::audit::list(&*self.store.conn()?, filter)
    }

    /// How many runs `filter` matches (its cursor and limit aside). With
    /// statuses alone (or nothing) the answer is the sum of the run counters
    /// and costs the same at any history size; otherwise the runs are
    /// counted, up to [`MAX_COUNTED`], past which the count is not exact.
    pub fn count_matching(&self, filter: &RunFilter) -> Result<MatchCount> {
        let only_statuses = filter.name.is_none()
            && filter.q.as_deref().is_none_or(str::is_empty)
            && filter.since.is_none()
            && filter.until.is_none();
        if only_statuses {
            let rows = crate::store::runs::count_by_status(&*self.store.conn()?)?;
            let n = rows
                .iter()
                .filter(|(s, _)| filter.statuses.is_empty() || filter.statuses.contains(s))
                .map(|(_, n)| *n)
                .sum::<i64>();
            return Ok(MatchCount {
                count: n.max(0) as u64,
                exact: true,
                counted: "counters",
            });
        }
        let n = crate::store::history::count_bounded(&*self.store.conn()?, filter, MAX_COUNTED)?;
        Ok(MatchCount {
            count: n.min(MAX_COUNTED) as u64,
            exact: n <= MAX_COUNTED,
            counted: "rows",
        })
    }
}
