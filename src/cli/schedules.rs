//! `jobmgr schedules` and its subcommands: list, show, run, pause, resume.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{outln, print_json};
use crate::error::Result;
use crate::manager::{Actor, Manager, ScheduleDetails, ScheduleView};

/// `jobmgr schedules [show|run|pause|resume NAME]`.
#[derive(Debug, Args)]
pub struct SchedulesArgs {
    #[command(subcommand)]
    pub action: Option<ScheduleAction>,
}

/// What to do with one schedule.
#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// The next 10 due times (UTC and local) and the recent ledger.
    Show { name: String },
    /// Enqueue a run of the schedule's job and parameters now.
    Run { name: String },
    /// Record every due time as SKIPPED_PAUSED until resumed.
    Pause { name: String },
    /// Let due times run again.
    Resume { name: String },
}

/// Carries out `jobmgr schedules ...`.
pub fn run(m: &Manager, args: &SchedulesArgs, json: bool) -> Result<i32> {
    match &args.action {
        None => {
            let list = m.schedules()?;
            if json {
                print_json(&list);
            } else {
                table(&list);
            }
        }
        Some(ScheduleAction::Show { name }) => {
            let d = m.schedule(name)?;
            if json {
                print_json(&d);
            } else {
                details(&d);
            }
        }
        Some(ScheduleAction::Run { name }) => {
            let run = m.run_schedule_now(name, &Actor::cli())?;
            if json {
                print_json(&run);
            } else {
                outln!("{}", run.id);
            }
        }
        Some(ScheduleAction::Pause { name }) | Some(ScheduleAction::Resume { name }) => {
            let pause = matches!(args.action, Some(ScheduleAction::Pause { .. }));
            let v = m.pause_schedule(name, pause, &Actor::cli())?;
            if json {
                print_json(&json!({"name": v.name, "paused": v.paused}));
            } else {
                let word = if v.paused { "paused" } else { "resumed" };
                outln!("schedule {} {word}", v.name);
            }
        }
    }
    Ok(0)
}

fn state(v: &ScheduleView) -> &'static str {
    match (v.enabled, v.paused) {
        (false, _) => "disabled",
        (true, true) => "paused",
        (true, false) => "enabled",
    }
}

fn last_run(v: &ScheduleView) -> String {
    match &v.last_run {
        None => "-".into(),
        Some(r) => format!("{} {}", r.id, r.status.map_or("(deleted)", |s| s.as_str())),
    }
}

fn table(list: &[ScheduleView]) {
    if list.is_empty() {
        outln!(
            "no schedules (declare them in jobmgr.toml as [schedules.NAME], or POST /api/schedules)"
        );
        return;
    }
    outln!(
        "{:<24}  {:<20}  {:<18}  {:<18}  {:<8}  {:<24}  LAST RUN",
        "NAME",
        "JOB",
        "CRON",
        "ZONE",
        "STATE",
        "NEXT DUE"
    );
    for v in list {
        outln!(
            "{:<24}  {:<20}  {:<18}  {:<18}  {:<8}  {:<24}  {}",
            v.name,
            v.job,
            v.cron,
            v.timezone,
            state(v),
            super::output::when_opt(v.next_due_at.as_deref()),
            last_run(v)
        );
    }
}

fn details(d: &ScheduleDetails) {
    let v = &d.schedule;
    outln!(
        "schedule {} ({}, from {})",
        v.name,
        state(v),
        v.source.as_str()
    );
    outln!("  job:        {}", v.job);
    outln!("  cron:       {} in {}", v.cron, v.timezone);
    outln!(
        "  parameters: {}",
        serde_json::to_string(&v.parameters).unwrap_or_default()
    );
    outln!(
        "  missed:     {} (max_catch_up {})",
        v.missed.as_str(),
        v.max_catch_up
    );
    outln!("  overlap:    {}", v.overlap.as_str());
    outln!("  last run:   {}", last_run(v));
    outln!("next due times:");
    if d.next_due_times.is_empty() {
        outln!("  none");
    }
    for t in &d.next_due_times {
        outln!("  {}  {}", t.utc, t.local);
    }
    outln!("ledger (newest first):");
    if d.ledger.is_empty() {
        outln!("  no due time decided yet");
    }
    for t in &d.ledger {
        let run = t.run_id.map_or("-".to_string(), |id| format!("run {id}"));
        outln!(
            "  {}  {:<15}  {:<8}  {}",
            super::output::when(&t.due_at),
            t.outcome.as_str(),
            run,
            t.reason.as_deref().unwrap_or("")
        );
    }
}
