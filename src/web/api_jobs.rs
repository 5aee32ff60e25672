//! Routes about runs: history, enqueue, details, cancel, re-run, stalled
//! runs and their clean-up, log pages and the streamed log export.

use std::io::Read;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::auth::Via;
use super::http::{Reply, Req, hdr, json_reply, stream_reply};
use super::run_body::{duplicate_reply, run_reply};
use crate::clock::{self, Timestamp};
use crate::error::{Error, Result};
use crate::events::run_json;
use crate::job::{JobStatus, LogLevel, LogLine, Trigger};
use crate::manager::{Actor, EnqueueRequest, Manager};
use crate::query::LogFilter;
use crate::query::RunFilter;

/// History page size: default and most.
const LIST_DEFAULT: usize = 50;
const LIST_MAX: usize = 500;
/// Log page size: default and most.
const LOGS_DEFAULT: usize = 200;
const LOGS_MAX: usize = 1000;
/// Lines the export reads per query.
const EXPORT_PAGE: usize = 1000;

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

fn limit(req: &Req, default: usize, max: usize) -> Result<usize> {
    match req.param("limit") {
        None => Ok(default),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!("limit must be between 1 and {max}, got '{t}'"))),
        },
    }
}

fn int_param(req: &Req, name: &str) -> Result<Option<i64>> {
    req.param(name)
        .map(|t| {
            t.parse()
                .map_err(|_| bad(format!("{name} must be a whole number, got '{t}'")))
        })
        .transpose()
}

pub(super) fn time_param(req: &Req, name: &str) -> Result<Option<String>> {
    req.param(name)
        .map(|t| {
            Timestamp::parse(t)
                .map(Timestamp::to_text)
                .ok_or_else(|| bad(format!("{name} must be a date or timestamp, got '{t}'")))
        })
        .transpose()
}

fn runs_json(runs: &[crate::job::JobRun]) -> Vec<Value> {
    runs.iter().map(run_json).collect()
}

/// The history filter of a request's query (statuses, name, search, time
/// range, cursor, limit); the count reads the same filter.
pub(super) fn run_filter(req: &Req) -> Result<RunFilter> {
    let mut statuses = Vec::new();
    for s in req
        .param("status")
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
    {
        statuses.push(JobStatus::parse(s).ok_or_else(|| bad(format!("unknown status '{s}'")))?);
    }
    Ok(RunFilter {
        statuses,
        name: req.param("name").map(str::to_string),
        q: req.param("q").map(str::to_string),
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
        before_id: int_param(req, "cursor")?,
        limit: limit(req, LIST_DEFAULT, LIST_MAX)?,
    })
}

/// `GET /api/jobs`: one page of history, newest first; each run carries
/// what is usual for its type (see `Manager::add_usual`).
pub fn list(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let filter = run_filter(req)?;
    let runs = ctx.manager.list(&filter)?;
    let next = (runs.len() == filter.limit)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    let views: Vec<Value> = runs.iter().map(|r| run_view(ctx, r)).collect();
    Ok(json_reply(200, &json!({"runs": views, "nextCursor": next})))
}

/// A run's JSON with what is usual for its type.
fn run_view(ctx: &Ctx, run: &crate::job::JobRun) -> Value {
    let mut v = run_json(run);
    ctx.manager.add_usual(&mut v, run);
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnqueueBody {
    job_name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    priority: i64,
    /// When to run it (see [`clock::parse_instant`]); absent: now.
    #[serde(default)]
    run_at: Option<String>,
    /// While a run with this key waits or runs, answer with it instead.
    #[serde(default)]
    unique_key: Option<String>,
    /// Runs that must all complete first.
    #[serde(default)]
    after: Vec<i64>,
}

/// `POST /api/jobs`: 201 with the new run (SCHEDULED when `runAt` is
/// still to come).
pub fn enqueue(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let body: EnqueueBody = serde_json::from_slice(&req.body).map_err(|e| {
        bad(format!(
            "request body must be a JSON object with jobName: {e}"
        ))
    })?;
    let trigger = if req.via == Via::Cookie {
        Trigger::Ui
    } else {
        Trigger::Api
    };
    let request = EnqueueRequest {
        job_name: body.job_name,
        parameters: body.parameters,
        priority: body.priority,
        trigger,
    };
    let run_at = body
        .run_at
        .as_deref()
        .map(|t| clock::parse_instant(t).map_err(|e| bad(format!("runAt: {e}"))))
        .transpose()?;
    let by = Actor::web(&req.source);
    if !body.after.is_empty() {
        if run_at.is_some() || body.unique_key.is_some() {
            return Err(bad(
                "after cannot be combined with runAt or uniqueKey".to_string()
            ));
        }
        let run = ctx.manager.enqueue_after(&request, &body.after, &by)?;
        return Ok(run_reply(201, &run));
    }
    let e = ctx
        .manager
        .enqueue_keyed(&request, run_at, body.unique_key.as_deref(), &by)?;
    Ok(match e.duplicate_of {
        Some(id) => duplicate_reply(&e.run, id),
        None => run_reply(201, &e.run),
    })
}

/// `GET /api/jobs/ID`: the run, its stages and its re-run chain.
pub fn show(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let d = ctx.manager.details(req.id_at(2)?)?;
    Ok(json_reply(
        200,
        &json!({
            "run": run_view(ctx, &d.run),
            "stages": d.stages,
            "reruns": d.reruns,
            "rerunOf": d.rerun_of,
            "attempts": d.attempts,
            "after": d.after,
            "waitedForBy": d.waited_for_by,
            "worker": d.worker.map(|w| json!({
                "id": w.id, "hostname": w.hostname, "pid": w.pid,
                "version": w.version, "state": w.state,
            })),
        }),
    ))
}

/// `POST /api/jobs/ID/cancel`.
pub fn cancel(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let result = ctx.manager.cancel(id, &Actor::web(&req.source))?;
    Ok(json_reply(200, &json!({"result": result})))
}

/// `POST /api/jobs/ID/rerun`: 201 with the new run.
pub fn rerun(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let run = ctx
        .manager
        .rerun(id, Trigger::Rerun, &Actor::web(&req.source))?;
    Ok(run_reply(201, &run))
}

/// `POST /api/jobs/ID/retry-now`: a run waiting for its next attempt
/// becomes due at once (409 when it is not waiting).
pub fn retry_now(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let action = crate::manager::WaitingAction::RetryNow;
    let run = ctx
        .manager
        .on_waiting(id, action, &Actor::web(&req.source))?;
    Ok(run_reply(200, &run))
}

/// `POST /api/jobs/ID/give-up`: a run waiting for its next attempt fails.
pub fn give_up(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let action = crate::manager::WaitingAction::GiveUp;
    let run = ctx
        .manager
        .on_waiting(id, action, &Actor::web(&req.source))?;
    Ok(run_reply(200, &run))
}

/// `GET /api/jobs/stalled`: what a clean-up would resolve.
pub fn stalled(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let runs = ctx.manager.stalled_preview()?;
    Ok(json_reply(200, &json!({"runs": runs_json(&runs)})))
}

/// `POST /api/jobs/cleanup-stalled`.
pub fn cleanup(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let rec = ctx.manager.cleanup_stalled(&Actor::web(&req.source))?;
    Ok(json_reply(
        200,
        &serde_json::to_value(rec).unwrap_or_default(),
    ))
}

/// `GET /api/jobs/ID/logs`: one page of a run's lines.
pub fn logs(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let min_level = req
        .param("level")
        .map(|l| LogLevel::parse(l).ok_or_else(|| bad(format!("unknown level '{l}'"))))
        .transpose()?;
    let filter = LogFilter {
        min_level,
        q: req.param("q").map(str::to_string),
        after_id: int_param(req, "after")?,
        limit: limit(req, LOGS_DEFAULT, LOGS_MAX)?,
    };
    let lines = ctx.manager.logs(id, &filter)?;
    let next = (lines.len() == filter.limit)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(json_reply(200, &json!({"lines": lines, "nextAfter": next})))
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    Text,
}

/// `GET /api/jobs/ID/logs/export?format=ndjson|text`: the whole log as a
/// download, read and sent page by page.
pub fn export(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let id = req.id_at(2)?;
    let format = match req.param("format").unwrap_or("ndjson") {
        "ndjson" => Format::Ndjson,
        "text" => Format::Text,
        other => return Err(bad(format!("format must be ndjson or text, got '{other}'"))),
    };
    ctx.manager.get(id)?;
    let (ct, ext) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Text => ("text/plain; charset=utf-8", "txt"),
    };
    let body = Export {
        manager: ctx.manager.clone(),
        run_id: id,
        after: None,
        format,
        buf: Vec::new(),
        pos: 0,
        done: false,
    };
    let mut r = stream_reply(200, ct, Box::new(body), None);
    r.add_header(hdr(
        "Content-Disposition",
        &format!("attachment; filename=\"run-{id}.{ext}\""),
    ));
    Ok(r)
}

/// Reads a run's log one page at a time as the response is written.
struct Export {
    manager: Manager,
    run_id: i64,
    after: Option<i64>,
    format: Format,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Export {
    fn fill(&mut self) -> std::io::Result<()> {
        let filter = LogFilter {
            after_id: self.after,
            limit: EXPORT_PAGE,
            ..LogFilter::default()
        };
        let lines = self
            .manager
            .logs(self.run_id, &filter)
            .map_err(std::io::Error::other)?;
        self.buf.clear();
        self.pos = 0;
        if lines.len() < EXPORT_PAGE {
            self.done = true;
        }
        for l in &lines {
            self.buf
                .extend_from_slice(format_line(l, self.format).as_bytes());
        }
        self.after = lines.last().map(|l| l.id).or(self.after);
        Ok(())
    }
}

fn format_line(l: &LogLine, format: Format) -> String {
    match format {
        Format::Ndjson => format!("{}\n", serde_json::to_string(l).unwrap_or_default()),
        Format::Text => format!("{}\n", l.to_text()),
    }
}

impl Read for Export {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
