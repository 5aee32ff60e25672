//! The page's charts and per-type table (`GET /api/insight`): runs finished
//! and failed per bucket over the last hour, day or week, and per job type
//! its runs, failure rate, duration p50/p95, last run, next scheduled run,
//! paused state and queue. Everything comes from the per-minute rollup
//! (V19) and from reads bounded by the number of types, schedules and
//! queued runs, never by the history.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Manager;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::minutes::{self, Figures};
use crate::store::{pauses, stats};

/// The span the charts show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// 60 buckets of a minute.
    Hour,
    /// 96 buckets of 15 minutes.
    Day,
    /// 168 buckets of an hour.
    Week,
}

impl Window {
    /// The names the API takes.
    pub const NAMES: [&'static str; 3] = ["hour", "day", "week"];

    /// `hour`, `day` or `week`.
    pub fn parse(text: &str) -> Result<Window> {
        match text {
            "hour" => Ok(Window::Hour),
            "day" => Ok(Window::Day),
            "week" => Ok(Window::Week),
            other => Err(Error::Invalid(format!(
                "window must be one of {}, got '{other}'",
                Window::NAMES.join(", ")
            ))),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Week => "week",
        }
    }

    /// Minutes per bucket, and buckets.
    fn shape(self) -> (i64, i64) {
        match self {
            Window::Hour => (1, 60),
            Window::Day => (15, 96),
            Window::Week => (60, 168),
        }
    }
}

/// One bucket of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// When the bucket starts (UTC).
    pub at: String,
    /// Runs that finished in it (any final status), and of those the failed.
    pub finished: i64,
    pub failed: i64,
}

/// A type's newest finished run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRun {
    pub id: i64,
    pub status: String,
    pub finished_at: String,
}

/// One job type's row of the table, over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeInsight {
    pub job: String,
    /// Finished runs (any final status), and of those the failed.
    pub runs: i64,
    pub failures: i64,
    /// failures / runs; None without runs.
    pub failure_rate: Option<f64>,
    /// Interpolated from the rollup's duration histogram.
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub last_run: Option<LastRun>,
    /// The soonest due time of its enabled, unpaused schedules.
    pub next_scheduled_at: Option<String>,
    pub paused: bool,
    pub queued: i64,
}

/// What `GET /api/insight` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Insight {
    pub window: &'static str,
    pub bucket_minutes: i64,
    /// The window, `[from, to)`, UTC; the last bucket holds now.
    pub from: String,
    pub to: String,
    pub series: Vec<Point>,
    pub types: Vec<TypeInsight>,
}

impl Manager {
    /// The charts' series and the per-type table over `window`.
    pub fn insight(&self, window: Window) -> Result<Insight> {
        let (step, buckets) = window.shape();
        let now = minutes::minute_of(Timestamp::now());
        let to = (now.div_euclid(step) + 1) * step;
        let from = to - step * buckets;
        let at = |minute: i64| Timestamp(minute * 60_000).to_text();
        let next_due = self.next_due_by_type()?;
        let conn = self.store.conn()?;
        let (series, types) = stats::in_snapshot(&conn, |c| {
            let mut series = vec![Figures::default(); buckets as usize];
            let paused: BTreeSet<String> = pauses::paused(c)?.into_iter().collect();
            let queued: BTreeMap<String, i64> = pauses::queued_by_type(c)?.into_iter().collect();
            let mut names: BTreeSet<String> = minutes::types(c)?.into_iter().collect();
            names.extend(self.registry.names().map(str::to_string));
            names.extend(queued.keys().cloned());
            names.extend(paused.iter().cloned());
            let mut types = Vec::with_capacity(names.len());
            for job in names {
                let mut total = Figures::default();
                for (k, f) in minutes::window(c, &job, from, to, step)? {
                    if let Some(point) = usize::try_from(k).ok().and_then(|k| series.get_mut(k)) {
                        point.add(&f);
                    }
                    total.add(&f);
                }
                let runs = total.finished();
                let row = TypeInsight {
                    runs,
                    failures: total.failed,
                    failure_rate: (runs > 0).then(|| total.failed as f64 / runs as f64),
                    p50_ms: total.quantile_ms(0.5),
                    p95_ms: total.quantile_ms(0.95),
                    last_run: minutes::last_finished(c, &job)?.map(|(id, status, finished_at)| {
                        LastRun {
                            id,
                            status,
                            finished_at,
                        }
                    }),
                    next_scheduled_at: next_due.get(&job).cloned(),
                    paused: paused.contains(&job),
                    queued: queued.get(&job).copied().unwrap_or(0),
                    job,
                };
                // A registered type that never ran and has nothing waiting
                // or planned has no row.
                let idle = row.runs == 0
                    && row.last_run.is_none()
                    && row.next_scheduled_at.is_none()
                    && !row.paused
                    && row.queued == 0;
                if !idle {
                    types.push(row);
                }
            }
            Ok((series, types))
        })?;
        Ok(Insight {
            window: window.as_str(),
            bucket_minutes: step,
            from: at(from),
            to: at(to),
            series: series
                .into_iter()
                .enumerate()
                .map(|(k, f)| Point {
                    at: at(from + k as i64 * step),
                    finished: f.finished(),
                    failed: f.failed,
                })
                .collect(),
            types,
        })
    }

    /// The soonest due time of each job type's enabled, unpaused schedules.
    fn next_due_by_type(&self) -> Result<BTreeMap<String, String>> {
        let mut next: BTreeMap<String, String> = BTreeMap::new();
        for s in self.schedules()? {
            let Some(due) = s.next_due_at.filter(|_| s.enabled && !s.paused) else {
                continue;
            };
            let slot = next.entry(s.job).or_insert_with(|| due.clone());
            if due < *slot {
                *slot = due;
            }
        }
        Ok(next)
    }
}
