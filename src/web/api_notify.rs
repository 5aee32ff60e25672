//! `GET /api/notifications`: the newest rows of the notification outbox
//! (`?status=PENDING|DELIVERED|FAILED`, `?limit=N`, `?cursor=ID` for the
//! next page), the totals by status and the configured notifiers.

use serde_json::json;

use super::Ctx;
use super::http::{Reply, Req, json_reply};
use crate::error::{Error, Result};
use crate::manager::NOTIFICATIONS_MAX;
use crate::notify::DeliveryStatus;

/// Rows a listing returns when `limit` is not given.
const DEFAULT_LIMIT: usize = 50;

/// `GET /api/notifications`.
pub fn list(ctx: &Ctx, req: &Req) -> Result<Reply> {
    let status = req.param("status").map(DeliveryStatus::parse).transpose()?;
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=NOTIFICATIONS_MAX).contains(n))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "limit must be between 1 and {NOTIFICATIONS_MAX}, got '{t}'"
                ))
            })?,
    };
    let before = req
        .param("cursor")
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| Error::Invalid(format!("cursor must be a whole number, got '{t}'")))
        })
        .transpose()?;
    let page = ctx.manager.notifications(status, before, limit)?;
    Ok(json_reply(200, &json!(page)))
}
