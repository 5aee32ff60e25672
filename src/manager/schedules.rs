//! The engine API of schedules, shared by the CLI and the HTTP API: list
//! and show (with the next due times and the ledger), create, update and
//! delete the database's schedules, pause, resume and run now either kind.
//! Every change writes its audit row in its own transaction. The file's
//! schedules come with the registry; they are edited in jobmgr.toml.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::schedule_view::{after, due_times, view};
use super::{Actor, DueTime, Manager, ScheduleDetails, ScheduleView, TickView, enqueue_metadata};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobRun;
use crate::schedule::{self, CronExpr, Missed, Overlap, Schedule, Source};
use crate::store::schedule_edits::{self as edits, NewSchedule};
use crate::store::schedules as store;

/// Ledger rows `show` returns.
pub const LEDGER_ROWS: usize = 50;
/// Due times `show` returns.
pub const NEXT_DUE: usize = 10;
/// Most due times a preview returns.
pub const MAX_PREVIEW: usize = 50;

/// A schedule to create or replace, as a client sends it; every field but
/// `job` and `cron` has a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    #[serde(default)]
    pub name: Option<String>,
    pub job: Option<String>,
    pub cron: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default)]
    pub missed: Option<String>,
    #[serde(default)]
    pub max_catch_up: Option<i64>,
    #[serde(default)]
    pub overlap: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

fn not_found(name: &str) -> Error {
    Error::NotFound {
        what: "schedule",
        id: name.to_string(),
    }
}

fn field(name: &str, m: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{name}: {m}"))
}

impl Manager {
    /// Checks `input` into a schedule named `name`; each bad field is a
    /// 400 naming it.
    pub fn check_schedule(&self, name: &str, input: &ScheduleInput) -> Result<Schedule> {
        schedule::check_name(name).map_err(|m| field("name", m))?;
        let job = input
            .job
            .as_deref()
            .ok_or_else(|| field("job", "is required (the job type to run)"))?;
        let cron_text = input.cron.as_deref().ok_or_else(|| {
            field(
                "cron",
                "is required (5 fields, 6 with seconds first, or @hourly/@daily/...)",
            )
        })?;
        let cron = CronExpr::parse(cron_text).map_err(|e| field("cron", e))?;
        let zone = match input.timezone.as_deref() {
            None => schedule::Tz::UTC,
            Some(z) => schedule::parse_zone(z).map_err(|m| field("timezone", m))?,
        };
        schedule::check_reachable(&cron, zone).map_err(|m| field("cron", m))?;
        let missed = input
            .missed
            .as_deref()
            .map_or(Ok(Missed::Skip), Missed::parse)
            .map_err(|m| field("missed", m))?;
        let overlap = input
            .overlap
            .as_deref()
            .map_or(Ok(Overlap::Skip), Overlap::parse)
            .map_err(|m| field("overlap", m))?;
        let max_catch_up = input
            .max_catch_up
            .map_or(Ok(schedule::DEFAULT_CATCH_UP), schedule::check_catch_up)
            .map_err(|m| field("maxCatchUp", m))?;
        let parameters = input.parameters.clone().unwrap_or_default();
        self.registry().get(job)?.validate(&parameters)?;
        Ok(Schedule {
            name: name.to_string(),
            job: job.to_string(),
            cron,
            zone,
            parameters,
            missed,
            max_catch_up,
            overlap,
            enabled: input.enabled.unwrap_or(true),
            source: Source::Api,
        })
    }

    /// Every schedule, the file's first, then the database's by name.
    pub fn schedules(&self) -> Result<Vec<ScheduleView>> {
        let conn = self.store.conn()?;
        let states = store::states(&conn)?;
        let now = Timestamp::now();
        let mut out: Vec<ScheduleView> = self
            .registry()
            .file_schedules()
            .iter()
            .map(|s| view(s, states.get(&s.name), now))
            .collect();
        for stored in store::list(&conn)? {
            if out.iter().any(|v| v.name == stored.name) {
                continue;
            }
            match stored.schedule {
                Ok(s) => out.push(view(&s, states.get(&s.name), now)),
                Err(why) => log::warn!("schedule {} cannot be read: {why}", stored.name),
            }
        }
        Ok(out)
    }

    /// One schedule with its next due times and recent ledger.
    pub fn schedule(&self, name: &str) -> Result<ScheduleDetails> {
        let s = self.find_schedule(name)?;
        let conn = self.store.conn()?;
        let state = store::state(&conn, name)?;
        let now = Timestamp::now();
        let v = view(&s, state.as_ref(), now);
        let from = after(state.as_ref()).map_or(now, |a| a.max(now));
        let next_due_times = if s.enabled {
            due_times(&s.cron, s.zone, from, NEXT_DUE)
        } else {
            Vec::new()
        };
        let ledger = store::ticks(&conn, name, LEDGER_ROWS)?
            .into_iter()
            .map(|t| TickView {
                due_at: t.due_at,
                decided_at: t.decided_at,
                outcome: t.outcome,
                run_id: t.run_id,
                reason: t.reason,
            })
            .collect();
        Ok(ScheduleDetails {
            schedule: v,
            next_due_times,
            ledger,
        })
    }

    /// The schedule called `name`, from the file or the database.
    fn find_schedule(&self, name: &str) -> Result<Schedule> {
        if let Some(s) = self
            .registry()
            .file_schedules()
            .iter()
            .find(|s| s.name == name)
        {
            return Ok(s.clone());
        }
        match store::get(&*self.store.conn()?, name)? {
            Some(stored) => stored
                .schedule
                .map_err(|why| Error::Conflict(format!("schedule {name} cannot be read: {why}"))),
            None => Err(not_found(name)),
        }
    }

    fn refuse_file(&self, name: &str) -> Result<()> {
        if self
            .registry()
            .file_schedules()
            .iter()
            .any(|s| s.name == name)
        {
            return Err(Error::Conflict(format!(
                "schedule {name} is declared in jobmgr.toml: edit it in jobmgr.toml"
            )));
        }
        Ok(())
    }

    /// Creates a database schedule; due times count from now.
    pub fn create_schedule(&self, input: &ScheduleInput, by: &Actor) -> Result<ScheduleView> {
        let name = input
            .name
            .as_deref()
            .ok_or_else(|| field("name", "is required"))?;
        let s = self.check_schedule(name, input)?;
        self.refuse_file(name)?;
        let now = Timestamp::now().to_text();
        let row = NewSchedule {
            schedule: &s,
            parameters: encode(&s.parameters),
        };
        let created = self.store.write("create schedule", |tx| {
            if !edits::insert(tx, &row, &now)? {
                return Ok(false);
            }
            let detail = format!("{} {} {}", s.job, s.cron.as_str(), s.zone.name());
            by.row("schedule.create", Some(target(name)), Some(detail))
                .insert(tx, &now)?;
            Ok(true)
        })?;
        if !created {
            return Err(Error::Conflict(format!("schedule {name} already exists")));
        }
        self.schedule_view(name)
    }

    /// Replaces a database schedule's fields; due times count from now,
    /// so a changed expression never backfills.
    pub fn update_schedule(
        &self,
        name: &str,
        input: &ScheduleInput,
        by: &Actor,
    ) -> Result<ScheduleView> {
        self.refuse_file(name)?;
        if let Some(other) = input.name.as_deref().filter(|n| *n != name) {
            return Err(field(
                "name",
                format!(
                    "'{other}' differs from the schedule's name '{name}' (names do not change)"
                ),
            ));
        }
        let s = self.check_schedule(name, input)?;
        let now = Timestamp::now().to_text();
        let row = NewSchedule {
            schedule: &s,
            parameters: encode(&s.parameters),
        };
        let updated = self.store.write("update schedule", |tx| {
            if !edits::update(tx, &row, &now)? {
                return Ok(false);
            }
            edits::restart(tx, name, &now)?;
            let detail = format!("{} {} {}", s.job, s.cron.as_str(), s.zone.name());
            by.row("schedule.update", Some(target(name)), Some(detail))
                .insert(tx, &now)?;
            Ok(true)
        })?;
        if !updated {
            return Err(not_found(name));
        }
        self.schedule_view(name)
    }

    /// Deletes a database schedule; its ledger rows and runs stay.
    pub fn delete_schedule(&self, name: &str, by: &Actor) -> Result<()> {
        self.refuse_file(name)?;
        let now = Timestamp::now().to_text();
        let deleted = self.store.write("delete schedule", |tx| {
            if !edits::delete(tx, name)? {
                return Ok(false);
            }
            by.row("schedule.delete", Some(target(name)), None)
                .insert(tx, &now)?;
            Ok(true)
        })?;
        if deleted {
            Ok(())
        } else {
            Err(not_found(name))
        }
    }

    /// Pauses (or resumes) a schedule of either kind: while paused, each
    /// due time is recorded as SKIPPED_PAUSED.
    pub fn pause_schedule(&self, name: &str, paused: bool, by: &Actor) -> Result<ScheduleView> {
        self.find_schedule(name)?;
        let now = Timestamp::now().to_text();
        let action = if paused {
            "schedule.pause"
        } else {
            "schedule.resume"
        };
        self.store.write("pause schedule", |tx| {
            let before = edits::set_paused(tx, name, paused, &now)?;
            let detail = (before == paused).then(|| "no change".to_string());
            by.row(action, Some(target(name)), detail)
                .insert(tx, &now)?;
            Ok(())
        })?;
        self.schedule_view(name)
    }

    /// Enqueues a run of the schedule's job with its parameters now: a
    /// manual run (`triggeredBy = 'schedule-now'`), with no due time and no
    /// ledger row, that counts as the schedule's latest run for overlap.
    pub fn run_schedule_now(&self, name: &str, by: &Actor) -> Result<JobRun> {
        let s = self.find_schedule(name)?;
        let params = self.registry().get(&s.job)?.validate(&s.parameters)?;
        let now = Timestamp::now().to_text();
        let id = self.store.write("run schedule now", |tx| {
            let id = edits::insert_run_now(
                tx,
                name,
                &s.job,
                &encode(&params),
                &enqueue_metadata(),
                &now,
            )?;
            by.row(
                "schedule.run",
                Some(target(name)),
                Some(format!("run {id}")),
            )
            .insert(tx, &now)?;
            Ok(id)
        })?;
        self.get(id)
    }

    /// The next `count` due times of an expression, for a form being
    /// typed; a bad expression or zone is a 400 with its place.
    pub fn preview_schedule(
        &self,
        cron: &str,
        zone: Option<&str>,
        count: usize,
    ) -> Result<Vec<DueTime>> {
        let cron = CronExpr::parse(cron).map_err(|e| field("cron", e))?;
        let zone = match zone.filter(|z| !z.is_empty()) {
            None => schedule::Tz::UTC,
            Some(z) => schedule::parse_zone(z).map_err(|m| field("timezone", m))?,
        };
        schedule::check_reachable(&cron, zone).map_err(|m| field("cron", m))?;
        if !(1..=MAX_PREVIEW).contains(&count) {
            return Err(field(
                "count",
                format!("must be between 1 and {MAX_PREVIEW}, got {count}"),
            ));
        }
        Ok(due_times(&cron, zone, Timestamp::now(), count))
    }

    /// The id of the newest ledger row, for the change watcher.
    pub fn newest_schedule_tick(&self) -> Result<i64> {
        store::newest_tick(&*self.store.conn()?)
    }

    fn schedule_view(&self, name: &str) -> Result<ScheduleView> {
        Ok(self.schedule(name)?.schedule)
    }
}

fn target(name: &str) -> String {
    format!("schedule {name}")
}

fn encode(params: &Map<String, Value>) -> String {
    serde_json::to_string(params).unwrap_or_else(|_| "{}".into())
}
