//! `RunMinute` (migration V19): finished runs per job type and minute with
//! a duration histogram, the rollup behind `GET /api/insight`. Connections
//! with triggers on count through the V19 triggers; the bulk writers
//! (triggers off, see [`super::counts`]) count here, with one UPSERT per
//! job type per commit (a commit's runs all finish at its `now`, so in one
//! minute). Every read is bounded by job types × minutes, never by the
//! history.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// Upper bounds (ms) of the histogram's buckets, in the order of the `b*`
/// columns; the last column counts what took longer than the last bound.
pub const BOUNDS_MS: [i64; 15] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
    3_600_000,
];

/// Buckets per row: one per bound, and one past the last.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

const BUCKET_COLUMNS: &str = "b10ms, b25ms, b50ms, b100ms, b250ms, b500ms, b1s, b2500ms, b5s, \
     b10s, b30s, b1m, b5m, b15m, b1h, bOver1h";

/// Minutes since 1970 of a time.
pub fn minute_of(t: Timestamp) -> i64 {
    t.0.div_euclid(60_000)
}

/// Adds one (job, minute) group's figures to `RunMinute`.
static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let updates: Vec<String> = BUCKET_COLUMNS
        .split(", ")
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    let marks: Vec<String> = (8..8 + BUCKETS).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO RunMinute (jobName, minute, completed, failed, cancelled, timed, \
         durationSumMs, {BUCKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {}) \
         ON CONFLICT (jobName, minute) DO UPDATE SET completed = completed + excluded.completed, \
         failed = failed + excluded.failed, cancelled = cancelled + excluded.cancelled, \
         timed = timed + excluded.timed, durationSumMs = durationSumMs + excluded.durationSumMs, \
         {}",
        marks.join(", "),
        updates.join(", ")
    )
});

/// One job type's figures in one minute (or, summed, in a longer bucket).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Runs with a duration, and the sum of their durations.
    pub timed: i64,
    pub duration_sum_ms: i64,
    /// Runs per duration bucket (not cumulative), see [`BOUNDS_MS`].
    pub buckets: [i64; BUCKETS],
}

impl Figures {
    /// Finished runs of every status.
    pub fn finished(&self) -> i64 {
        self.completed + self.failed + self.cancelled
    }

    fn add_run(&mut self, status: &str, duration_ms: Option<i64>) {
        match status {
            "COMPLETED" => self.completed += 1,
            "FAILED" => self.failed += 1,
            _ => self.cancelled += 1,
        }
        if let Some(d) = duration_ms {
            self.timed += 1;
            self.duration_sum_ms += d;
            let k = BOUNDS_MS
                .iter()
                .position(|&b| d <= b)
                .unwrap_or(BUCKETS - 1);
            self.buckets[k] += 1;
        }
    }

    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &Figures) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.timed += other.timed;
        self.duration_sum_ms += other.duration_sum_ms;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    /// The duration below which fraction `q` of the timed runs fall,
    /// interpolated linearly inside its bucket (runs spread evenly between
    /// its bounds); past the last bound, the last bound. None without runs.
    pub fn quantile_ms(&self, q: f64) -> Option<i64> {
        if self.timed <= 0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * self.timed as f64;
        let mut below = 0.0;
        for (k, &n) in self.buckets.iter().enumerate() {
            let n = n as f64;
            if n > 0.0 && below + n >= target {
                let lo = if k == 0 { 0 } else { BOUNDS_MS[k - 1] } as f64;
                let Some(&hi) = BOUNDS_MS.get(k) else {
                    return Some(lo as i64);
                };
                let share = ((target - below) / n).clamp(0.0, 1.0);
                return Some((lo + (hi as f64 - lo) * share).round() as i64);
            }
            below += n;
        }
        BOUNDS_MS.last().copied()
    }
}

/// Counts finished runs, given as (job, status, when the attempt started),
/// all finished at `now`, into `RunMinute`: one UPSERT per job type among
/// them. Called only by connections with triggers off (the triggers count
/// for the others).
pub fn count_finished<'a>(
    tx: &Transaction<'_>,
    runs: impl Iterator<Item = (&'a str, &'a str, Option<Timestamp>)>,
    now: &str,
) -> Result<()> {
    let op = "count finished runs per minute";
    let Some(finished) = Timestamp::parse(now) else {
        return Ok(());
    };
    let mut groups: BTreeMap<&str, Figures> = BTreeMap::new();
    for (job, status, started) in runs {
        let duration = started.map(|s| (finished.0 - s.0).max(0));
        groups.entry(job).or_default().add_run(status, duration);
    }
    if groups.is_empty() {
        return Ok(());
    }
    let minute = minute_of(finished);
    let mut write = tx.prepare_cached(&UPSERT).map_err(Error::db(op))?;
    for (job, g) in &groups {
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![
            job,
            &minute,
            &g.completed,
            &g.failed,
            &g.cancelled,
            &g.timed,
            &g.duration_sum_ms,
        ];
        args.extend(g.buckets.iter().map(|b| b as &dyn rusqlite::ToSql));
        write.execute(args.as_slice()).map_err(Error::db(op))?;
    }
    Ok(())
}

/// The job types that have rows, by name: one index seek per type (the
/// primary key starts with the name), however many minutes each has.
pub fn types(conn: &Connection) -> Result<Vec<String>> {
    let mut next = conn
        .prepare_cached("SELECT jobName FROM RunMinute WHERE jobName > ?1 ORDER BY jobName LIMIT 1")
        .map_err(Error::db("read rollup types"))?;
    let mut out: Vec<String> = Vec::new();
    loop {
        let after = out.last().map(String::as_str).unwrap_or("");
        let found: Option<String> = next
            .query_row([after], |r| r.get(0))
            .optional()
            .map_err(Error::db("read rollup types"))?;
        match found {
            Some(name) => out.push(name),
            None => return Ok(out),
        }
    }
}

/// Finished runs (any status) and FAILED runs of the minutes from `minute`
/// on, all job types: one primary-key range per type.
pub fn totals_from(conn: &Connection, minute: i64) -> Result<(i64, i64)> {
    let op = "read the rollup totals";
    let mut sum = conn
        .prepare_cached(
            "SELECT coalesce(sum(completed + failed + cancelled), 0), coalesce(sum(failed), 0) \
             FROM RunMinute WHERE jobName = ?1 AND minute >= ?2",
        )
        .map_err(Error::db(op))?;
    let mut total = (0, 0);
    for job in types(conn)? {
        let (finished, failed): (i64, i64) = sum
            .query_row(params![job, minute], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(Error::db(op))?;
        total = (total.0 + finished, total.1 + failed);
    }
    Ok(total)
}

/// [`window`]'s statement: ?1 the job, ?2 and ?3 the minutes, ?4 the step.
static WINDOW: LazyLock<String> = LazyLock::new(|| {
    let sums: Vec<String> = BUCKET_COLUMNS
        .split(", ")
        .map(|c| format!("sum({c})"))
        .collect();
    format!(
        "SELECT (minute - ?2) / ?4 AS k, sum(completed), sum(failed), sum(cancelled), \
         sum(timed), sum(durationSumMs), {} FROM RunMinute \
         WHERE jobName = ?1 AND minute >= ?2 AND minute < ?3 GROUP BY k ORDER BY k",
        sums.join(", ")
    )
});

/// `job`'s figures in the minutes `[from, to)`, summed per bucket of
/// `step` minutes counted from `from`: (bucket index, figures), by index.
pub fn window(
    conn: &Connection,
    job: &str,
    from: i64,
    to: i64,
    step: i64,
) -> Result<Vec<(i64, Figures)>> {
    conn.prepare_cached(&WINDOW)
        .and_then(|mut s| {
            s.query_map(params![job, from, to, step.max(1)], |r| {
                let mut f = Figures {
                    completed: r.get(1)?,
                    failed: r.get(2)?,
                    cancelled: r.get(3)?,
                    timed: r.get(4)?,
                    duration_sum_ms: r.get(5)?,
                    buckets: [0; BUCKETS],
                };
                for (i, b) in f.buckets.iter_mut().enumerate() {
                    *b = r.get(6 + i)?;
                }
                Ok((r.get(0)?, f))
            })?
            .collect()
        })
        .map_err(Error::db("read the rollup"))
}

/// The newest finished run of a type: (id, status, finishedAt).
pub type LastRun = (i64, String, String);

/// `job`'s newest finished run. The type's newest minute in the rollup is
/// one seek; the finish index is then walked back from the end of that
/// minute to the first run of the type, so the cost is bounded by the runs
/// of one minute, not by the history. None when the rollup has no row of
/// the type (nothing finished in the last 8 days).
pub fn last_finished(conn: &Connection, job: &str) -> Result<Option<LastRun>> {
    let op = "read the last run";
    let minute: Option<i64> = conn
        .prepare_cached("SELECT max(minute) FROM RunMinute WHERE jobName = ?1")
        .and_then(|mut s| s.query_row([job], |r| r.get(0)))
        .map_err(Error::db(op))?;
    let Some(minute) = minute else {
        return Ok(None);
    };
    let from = Timestamp(minute * 60_000).to_text();
    let to = Timestamp((minute + 1) * 60_000).to_text();
    conn.prepare_cached(
        "SELECT id, status, finishedAt FROM JobRun INDEXED BY JobRun_finished \
         WHERE finishedAt IS NOT NULL AND finishedAt >= ?2 AND finishedAt < ?3 \
         AND jobName = ?1 AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') \
         ORDER BY finishedAt DESC, id DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(params![job, from, to], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
    })
    .map_err(Error::db(op))
}

/// Whether any row is of a minute before `minute` (a read: one seek per
/// type).
pub fn has_before(conn: &Connection, minute: i64) -> Result<bool> {
    for job in types(conn)? {
        let found: bool = conn
            .prepare_cached(
                "SELECT count(*) > 0 FROM (SELECT 1 FROM RunMinute \
                 WHERE jobName = ?1 AND minute < ?2 LIMIT 1)",
            )
            .and_then(|mut s| s.query_row(params![job, minute], |r| r.get(0)))
            .map_err(Error::db("read old rollup rows"))?;
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the rows of minutes before `minute` in one transaction, type by
/// type (each a range of the primary key); returns how many.
pub fn delete_before(conn: &mut Connection, minute: i64) -> Result<usize> {
    super::write_on(conn, "delete old rollup rows", |tx| {
        let mut n = 0;
        for job in types(tx)? {
            n += tx
                .prepare_cached("DELETE FROM RunMinute WHERE jobName = ?1 AND minute < ?2")
                .and_then(|mut s| s.execute(params![job, minute]))
                .map_err(Error::db("delete old rollup rows"))?;
        }
        Ok(n)
    })
}

#[cfg(test)]
#[path = "minutes_tests.rs"]
mod tests;
