//! Routes about the worker and the overview: health, worker status and
//! start/stop, statistics, failure groups and job types.

use serde_json::json;

use super::http::{Reply, Req, error_reply, json_reply};
use super::{Ctx, worker_json};
use crate::error::{Error, Result};
use crate::manager::{Actor, WorkerStatus};
use crate::worker::VERSION;

/// `GET /healthz` (no auth).
pub fn healthz(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(json_reply(200, &json!({"ok": true, "version": VERSION})))
}

/// `GET /readyz` (no auth): 200 when a worker is RUNNING with a fresh
/// heartbeat on a schema this build expects, else 503 with the reasons.
pub fn readyz(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(match ctx.manager.readiness() {
        Ok(r) => json_reply(if r.ready { 200 } else { 503 }, &json!(r)),
        Err(e) => json_reply(
            503,
            &json!({"ready": false, "reasons": [{"code": e.code(), "message": e.to_string()}]}),
        ),
    })
}

/// `GET /ws` without an upgrade.
pub fn not_upgraded(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(error_reply(
        400,
        "invalid_input",
        "expected a WebSocket upgrade",
    ))
}

/// The worker's status, plus what the server's maintenance tasks have done
/// (`maintenance`: one entry per task, with its counts).
fn status_json(ctx: &Ctx, status: &WorkerStatus) -> serde_json::Value {
    let mut v = worker_json(status, ctx.supervisor.child_pid().get());
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("maintenance".into(), json!(ctx.tasks.snapshot()));
        // The worker's housekeeping (retention, disk guard); its absence
        // must not hide the worker's state.
        match ctx.manager.housekeeping() {
            Ok(h) => m.insert("housekeeping".into(), json!(h)),
            Err(e) => m.insert("housekeeping".into(), json!({"error": e.to_string()})),
        };
    }
    v
}

/// `GET /api/worker`.
pub fn status(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let s = ctx.manager.worker_status()?;
    Ok(json_reply(200, &status_json(ctx, &s)))
}

fn is_active(s: &WorkerStatus) -> bool {
    s.state.is_active()
}

/// `POST /api/worker/start`: 202 at once with the status as it was (the
/// new worker's row follows over the WebSocket as `worker` events), or 409
/// when a worker is active. The audit row is committed before the start:
/// a refused one (a full disk) starts nothing.
pub fn start(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let before = ctx.manager.worker_status()?;
    if is_active(&before) {
        return Err(Error::Conflict(format!(
            "a worker is already running ({})",
            before.state
        )));
    }
    ctx.manager
        .audit(&Actor::web(&req.source), "worker.start")?;
    ctx.supervisor.start();
    Ok(json_reply(
        202,
        &json!({"worker": status_json(ctx, &before)}),
    ))
}

/// `POST /api/worker/stop`: 202, or 409 when no worker is active.
pub fn stop(ctx: &Ctx, req: &Req) -> Result<Reply> {
    ctx.manager.request_worker_stop(&Actor::web(&req.source))?;
    ctx.supervisor.stop_requested();
    let s = ctx.manager.worker_status()?;
    Ok(json_reply(202, &json!({"worker": status_json(ctx, &s)})))
}

/// `GET /api/stats`.
pub fn stats(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let s = ctx.manager.stats()?;
    Ok(json_reply(
        200,
        &serde_json::to_value(s).unwrap_or_default(),
    ))
}

/// `GET /api/errors?hours=24`.
pub fn errors(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let hours = match req.param("hours") {
        None => 24,
        Some(h) => h
            .parse()
            .map_err(|_| Error::Invalid(format!("hours must be a whole number, got '{h}'")))?,
    };
    let groups = ctx.manager.error_groups(hours)?;
    Ok(json_reply(200, &json!({"groups": groups})))
}

/// `GET /api/job-types`.
pub fn job_types(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let states = ctx.manager.type_states()?;
    let mut list = serde_json::to_value(ctx.manager.registry().infos()).unwrap_or_default();
    if let Some(items) = list.as_array_mut() {
        for item in items {
            let name = item["name"].as_str().unwrap_or_default().to_string();
            if let Some(s) = states.get(&name) {
                item["paused"] = s.paused.into();
                item["queued"] = s.queued.into();
            }
        }
    }
    Ok(json_reply(200, &json!({"jobTypes": list})))
}

/// `POST /api/job-types/NAME/pause` and `.../resume`: audited; the answer
/// says whether it changed and how many runs are queued.
pub fn pause_type(ctx: &Ctx, req: &Req) -> Result<Reply> {
    set_paused(ctx, req, true)
}

/// `POST /api/job-types/NAME/resume`.
pub fn resume_type(ctx: &Ctx, req: &Req) -> Result<Reply> {
    set_paused(ctx, req, false)
}

fn set_paused(ctx: &Ctx, req: &Req, paused: bool) -> Result<Reply> {
    let name = req.segments.get(2).cloned().unwrap_or_default();
    let by = crate::manager::Actor::web(&req.source);
    let changed = ctx.manager.set_paused(&name, paused, &by)?;
    let queued = ctx
        .manager
        .type_states()?
        .get(&name)
        .map_or(0, |s| s.queued);
    Ok(json_reply(
        200,
        &json!({"name": name, "paused": paused, "changed": changed, "queued": queued}),
    ))
}
