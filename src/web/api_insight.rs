//! Routes of the page's insight: the audit trail (`GET /api/audit`), the
//! total a history filter matches (`GET /api/jobs/count`), and the charts
//! with the per-type table (`GET /api/insight`).

use serde_json::json;

use super::Ctx;
use super::api_jobs::{run_filter, time_param};
use super::http::{Reply, Req, json_reply};
use crate::error::{Error, Result};
use crate::query::{AuditFilter, AuditSource};

/// Audit page size: default and most.
const AUDIT_DEFAULT: usize = 50;
const AUDIT_MAX: usize = 200;
/// The filters `GET /api/audit` knows.
const AUDIT_PARAMS: [&str; 8] = [
    "action", "source", "user", "run", "since", "until", "cursor", "limit",
];

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

/// `GET /api/audit`: one page of admin actions, newest first, filtered by
/// action (exact, or a prefix ending in `*`), source (`page`, `api`,
/// `cli`), user, run id and time range.
pub fn audit(ctx: &Ctx, req: &Req) -> Result<Reply> {
    if let Some(k) = req
        .query
        .keys()
        .find(|k| !AUDIT_PARAMS.contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown filter '{k}'; the filters are {}",
            AUDIT_PARAMS.join(", ")
        )));
    }
    let action = req.param("action").map(str::to_string);
    if let Some(a) = &action {
        let body = a.strip_suffix('*').unwrap_or(a);
        let ok = body.len() <= 100
            && body
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            return Err(bad(format!(
                "action must be an action name such as run.cancel, or a prefix ending in * \
                 such as run.*, got '{a}'"
            )));
        }
    }
    let source = req
        .param("source")
        .map(|s| {
            AuditSource::parse(s)
                .ok_or_else(|| bad(format!("source must be page, api or cli, got '{s}'")))
        })
        .transpose()?;
    let user = req.param("user").map(str::to_string);
    if user.as_ref().is_some_and(|u| u.len() > 200) {
        return Err(bad("user must be at most 200 characters".into()));
    }
    let whole = |name: &str| -> Result<Option<i64>> {
        req.param(name)
            .map(|t| match t.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(format!(
                    "{name} must be a run or row id (a whole number above 0), got '{t}'"
                ))),
            })
            .transpose()
    };
    let limit = match req.param("limit") {
        None => AUDIT_DEFAULT,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=AUDIT_MAX).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "limit must be between 1 and {AUDIT_MAX}, got '{t}'"
                )));
            }
        },
    };
    let filter = AuditFilter {
        action,
        source,
        user,
        run_id: whole("run")?,
        since: time_param(req, "since")?,
        until: time_param(req, "until")?,
        before_id: whole("cursor")?,
        limit,
    };
    let entries = ctx.manager.audit_entries(&filter)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(json_reply(
        200,
        &json!({"entries": entries, "nextCursor": next}),
    ))
}

/// `GET /api/jobs/count`: how many runs the history's filter (status,
/// name, q, since, until) matches: `{count, exact, counted}`.
pub fn count(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let filter = run_filter(req)?;
    let n = ctx.manager.count_matching(&filter)?;
    Ok(json_reply(
        200,
        &serde_json::to_value(n).unwrap_or_default(),
    ))
}

/// `GET /api/insight?window=hour|day|week` (default `day`): runs finished
/// and failed per bucket, and the per-type table, from the per-minute
/// rollup.
pub fn insight(ctx: &Ctx, req: &Req) -> Result<Reply> {
    if let Some(k) = req.query.keys().find(|k| k.as_str() != "window") {
        return Err(bad(format!(
            "unknown parameter '{k}'; the only one is window"
        )));
    }
    let window = crate::manager::Window::parse(req.param("window").unwrap_or("day"))?;
    let view = ctx.manager.insight(window)?;
    Ok(json_reply(
        200,
        &serde_json::to_value(view).unwrap_or_default(),
    ))
}
