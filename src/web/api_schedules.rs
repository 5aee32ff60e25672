//! Routes about schedules: list, create, show, replace, delete, run now,
//! pause, resume, and the preview of an expression's next due times for
//! the page's form. Every change is pushed to WebSocket clients as a
//! `schedules` event so that open pages reload the list.

use serde_json::{Value, json};

use super::Ctx;
use super::http::{Reply, Req, json_reply};
use crate::error::{Error, Result, suggest};
use crate::manager::{Actor, ScheduleInput};

/// Due times a preview returns when `count` is not given.
const PREVIEW_DEFAULT: usize = 5;

const FIELDS: &[&str] = &[
    "name",
    "job",
    "cron",
    "timezone",
    "parameters",
    "missed",
    "maxCatchUp",
    "overlap",
    "enabled",
];

/// The schedule name in segment 2.
fn name(req: &Req) -> &str {
    req.segments.get(2).map(String::as_str).unwrap_or("")
}

fn changed(ctx: &Ctx, name: &str, change: &str) {
    let event = json!({"type": "schedules", "name": name, "change": change});
    ctx.hub.publish_text(event.to_string().into());
}

/// Reads a schedule body field by field, so that each wrong field is a
/// 400 naming it (serde's own messages do not).
fn input(req: &Req) -> Result<ScheduleInput> {
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Error::Invalid(format!("request body must be a JSON object: {e}")))?;
    let Value::Object(body) = value else {
        return Err(Error::Invalid("request body must be a JSON object".into()));
    };
    for key in body.keys() {
        if !FIELDS.contains(&key.as_str()) {
            let mut m = format!("unknown field '{key}'");
            match suggest(key, FIELDS.iter().copied()) {
                Some(s) => m.push_str(&format!(" (did you mean '{s}'?)")),
                None => m.push_str(&format!(" (expected: {})", FIELDS.join(", "))),
            }
            return Err(Error::Invalid(m));
        }
    }
    let text = |k: &str| -> Result<Option<String>> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::Invalid(format!("{k}: expected a string"))),
        }
    };
    let parameters = match body.get("parameters") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(Error::Invalid("parameters: expected a JSON object".into())),
    };
    let max_catch_up = match body.get("maxCatchUp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| Error::Invalid("maxCatchUp: expected a whole number".into()))?,
        ),
    };
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Error::Invalid("enabled: expected true or false".into())),
    };
    Ok(ScheduleInput {
        name: text("name")?,
        job: text("job")?,
        cron: text("cron")?,
        timezone: text("timezone")?,
        parameters,
        missed: text("missed")?,
        max_catch_up,
        overlap: text("overlap")?,
        enabled,
    })
}

/// `GET /api/schedules`.
pub fn list(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let list = ctx.manager.schedules()?;
    Ok(json_reply(200, &json!({"schedules": list})))
}

/// `POST /api/schedules`: 201 with the new schedule.
pub fn create(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let s = ctx
        .manager
        .create_schedule(&input(req)?, &Actor::web(&req.source))?;
    changed(ctx, &s.name, "created");
    Ok(json_reply(201, &json!({"schedule": s})))
}

/// `GET /api/schedules/NAME`: with `nextDueTimes` and `ledger`.
pub fn show(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let d = ctx.manager.schedule(name(req))?;
    Ok(json_reply(200, &json!({"schedule": d})))
}

/// `PUT /api/schedules/NAME`: replaces a database schedule.
pub fn update(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let s = ctx
        .manager
        .update_schedule(name(req), &input(req)?, &Actor::web(&req.source))?;
    changed(ctx, &s.name, "updated");
    Ok(json_reply(200, &json!({"schedule": s})))
}

/// `DELETE /api/schedules/NAME`.
pub fn delete(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let n = name(req);
    ctx.manager.delete_schedule(n, &Actor::web(&req.source))?;
    changed(ctx, n, "deleted");
    Ok(json_reply(200, &json!({"deleted": n})))
}

/// `POST /api/schedules/NAME/run`: 201 with the run.
pub fn run(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let run = ctx
        .manager
        .run_schedule_now(name(req), &Actor::web(&req.source))?;
    changed(ctx, name(req), "run");
    Ok(super::run_body::run_reply(201, &run))
}

fn set_paused(ctx: &Ctx, req: &Req, paused: bool) -> Result<Reply> {
    let s = ctx
        .manager
        .pause_schedule(name(req), paused, &Actor::web(&req.source))?;
    changed(ctx, &s.name, if paused { "paused" } else { "resumed" });
    Ok(json_reply(200, &json!({"schedule": s})))
}

/// `POST /api/schedules/NAME/pause`.
pub fn pause(ctx: &Ctx, req: &Req) -> Result<Reply> {
    set_paused(ctx, req, true)
}

/// `POST /api/schedules/NAME/resume`.
pub fn resume(ctx: &Ctx, req: &Req) -> Result<Reply> {
    set_paused(ctx, req, false)
}

/// `GET /api/schedules/preview?cron=...&timezone=...&count=5`.
pub fn preview(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let cron = req
        .param("cron")
        .ok_or_else(|| Error::Invalid("cron: is required".into()))?;
    let count = match req.param("count") {
        None => PREVIEW_DEFAULT,
        Some(t) => t
            .parse()
            .map_err(|_| Error::Invalid(format!("count: expected a whole number, got '{t}'")))?,
    };
    let times = ctx
        .manager
        .preview_schedule(cron, req.param("timezone"), count)?;
    Ok(json_reply(200, &json!({"dueTimes": times})))
}
