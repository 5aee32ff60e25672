//! `POST /api/jobs/bulk`: cancel, re-run or delete every run a history
//! filter matches, or with `dryRun` only count them (the page's
//! confirmation names that count), and `GET /api/jobs/bulk/ID`, how far an
//! action got. The request only records the action and answers 202: the
//! server's bulk thread carries it out in the engine's short batches.

use serde::Deserialize;
use serde_json::json;

use super::Ctx;
use super::http::{Reply, Req, json_reply};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::{JobStatus, Trigger};
use crate::manager::{Actor, BulkAction, BulkRequest, BulkRunner};
use crate::query::RunFilter;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkBody {
    action: String,
    #[serde(default)]
    filter: FilterBody,
    /// Allows a delete with an empty filter.
    #[serde(default)]
    all: bool,
    /// Count only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The history's filter, as the page's URL and `GET /api/jobs` have it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    status: Vec<String>,
    name: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

/// An empty text is no filter at all (the page sends its empty fields).
fn given(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn time(name: &str, v: Option<String>) -> Result<Option<String>> {
    given(v)
        .map(|t| {
            Timestamp::parse(&t).map(Timestamp::to_text).ok_or_else(|| {
                bad(format!(
                    "filter.{name} must be a date or timestamp, got '{t}'"
                ))
            })
        })
        .transpose()
}

impl FilterBody {
    fn into_filter(self) -> Result<RunFilter> {
        let statuses = self
            .status
            .iter()
            .map(|s| {
                JobStatus::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    bad(format!(
                        "unknown status '{s}' (expected one of {})",
                        all.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RunFilter {
            statuses,
            name: given(self.name),
            q: given(self.q),
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            ..RunFilter::default()
        })
    }
}

/// `POST /api/jobs/bulk {action, filter, all?, dryRun?}`: a dry run
/// answers 200 with how many runs match (`capped`: more than that, the
/// count stops there); otherwise 202 with the recorded
/// action (its `id`, `total` and `status`), carried out in the background.
pub fn bulk(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let body: BulkBody = serde_json::from_slice(&req.body).map_err(|e| {
        bad(format!(
            "request body must be a JSON object with action and filter: {e}"
        ))
    })?;
    let action = BulkAction::parse(&body.action).ok_or_else(|| {
        bad(format!(
            "unknown action '{}' (expected cancel, rerun or delete)",
            body.action
        ))
    })?;
    let request = BulkRequest {
        action,
        filter: body.filter.into_filter()?,
        all: body.all,
    };
    if body.dry_run {
        let n = ctx.manager.bulk_preview(&request)?;
        return Ok(json_reply(
            200,
            &json!({"action": action.as_str(), "matched": n.matched, "capped": n.capped,
                    "dryRun": true}),
        ));
    }
    let view = ctx.manager.bulk_start(
        &request,
        Trigger::Rerun,
        &Actor::web(&req.source),
        BulkRunner::Serve,
    )?;
    // Full means a wake is already pending, which is as good.
    let _ = ctx.bulk_wake.try_send(());
    Ok(json_reply(
        202,
        &serde_json::to_value(view).unwrap_or_default(),
    ))
}

/// `GET /api/jobs/bulk/ID`: the action, its counts so far and its status
/// (RUNNING, DONE, FAILED or INTERRUPTED).
pub fn show(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let text = req.segments.get(3).map(String::as_str).unwrap_or("");
    let id = text.parse().map_err(|_| Error::NotFound {
        what: "bulk action",
        id: text.to_string(),
    })?;
    let view = ctx.manager.bulk_view(id)?;
    Ok(json_reply(
        200,
        &serde_json::to_value(view).unwrap_or_default(),
    ))
}
