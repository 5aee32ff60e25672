//! What the schedule commands and routes show: a schedule with its next
//! due time and latest run, its next due times in UTC and local time, and
//! its ledger rows.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::job::JobStatus;
use crate::schedule::{self, CronExpr, Missed, Overlap, Schedule, Source};
use crate::store::schedules::State;

/// A schedule as the list and the API show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub name: String,
    pub job: String,
    pub cron: String,
    pub timezone: String,
    pub parameters: Map<String, Value>,
    pub missed: Missed,
    pub max_catch_up: u32,
    pub overlap: Overlap,
    pub enabled: bool,
    pub paused: bool,
    pub source: Source,
    pub next_due_at: Option<String>,
    pub last_run: Option<LastRunView>,
}

/// A schedule's latest run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRunView {
    pub id: i64,
    /// None when retention has deleted the run.
    pub status: Option<JobStatus>,
    /// None for a "run now" run.
    pub due_at: Option<String>,
}

/// One due time, in UTC and in the schedule's zone.
#[derive(Debug, Clone, Serialize)]
pub struct DueTime {
    pub utc: String,
    pub local: String,
}

/// One ledger row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickView {
    pub due_at: String,
    pub decided_at: String,
    pub outcome: schedule::Outcome,
    pub run_id: Option<i64>,
    pub reason: Option<String>,
}

/// `show`: the schedule, its next due times and its recent ledger.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDetails {
    #[serde(flatten)]
    pub schedule: ScheduleView,
    pub next_due_times: Vec<DueTime>,
    pub ledger: Vec<TickView>,
}

/// Where the scheduler will continue: after the later of its start and
/// its latest decided due time.
pub(super) fn after(state: Option<&State>) -> Option<Timestamp> {
    let st = state?;
    let since = Timestamp::parse(&st.since);
    let last = st.last_due.as_deref().and_then(Timestamp::parse);
    since.max(last)
}

pub(super) fn due_times(
    cron: &CronExpr,
    zone: schedule::Tz,
    from: Timestamp,
    n: usize,
) -> Vec<DueTime> {
    cron.upcoming(from, zone, n)
        .into_iter()
        .map(|t| DueTime {
            utc: t.to_text(),
            local: schedule::local_text(t, zone),
        })
        .collect()
}

pub(super) fn view(s: &Schedule, state: Option<&State>, now: Timestamp) -> ScheduleView {
    let from = after(state).map_or(now, |a| a.max(now));
    ScheduleView {
        name: s.name.clone(),
        job: s.job.clone(),
        cron: s.cron.as_str().to_string(),
        timezone: s.zone.name().to_string(),
        parameters: s.parameters.clone(),
        missed: s.missed,
        max_catch_up: s.max_catch_up,
        overlap: s.overlap,
        enabled: s.enabled,
        paused: state.is_some_and(|st| st.paused),
        source: s.source,
        next_due_at: s
            .enabled
            .then(|| s.next_after(from))
            .flatten()
            .map(Timestamp::to_text),
        last_run: state
            .and_then(|st| st.last_run.as_ref())
            .map(|r| LastRunView {
                id: r.id,
                status: r.status,
                due_at: r.due_at.clone(),
            }),
    }
}
