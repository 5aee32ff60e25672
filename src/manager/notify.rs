//! Notifications as the CLI, the API and the page show them: the newest
//! outbox rows (of one status, when asked), the totals by status, and the
//! notifiers the config file declares.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Manager;
use crate::error::Result;
use crate::notify::{DeliveryStatus, Target};
use crate::store::notify::{self as queries, Delivery};

/// Most rows one listing returns.
pub const NOTIFICATIONS_MAX: usize = 500;

/// A page of the outbox.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; None on the last.
    pub next_cursor: Option<i64>,
    /// Every row by status.
    pub counts: BTreeMap<String, i64>,
    pub notifiers: Vec<NotifierView>,
}

/// One `[[notify]]` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifierView {
    pub name: String,
    pub on: Vec<&'static str>,
    pub jobs: Option<Vec<String>>,
    /// `webhook` or `command`.
    pub kind: &'static str,
    /// The URL, or the argv joined with spaces.
    pub target: String,
}

/// The outbox in `jobmgr status`: rows by status, and the newest
/// failure that is not delivered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySummary {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub last_failure: Option<Delivery>,
}

impl Manager {
    /// The outbox's totals and its newest undelivered failure.
    pub fn notify_summary(&self) -> Result<NotifySummary> {
        let conn = self.store.conn()?;
        let mut summary = NotifySummary {
            pending: 0,
            delivered: 0,
            failed: 0,
            last_failure: queries::last_failure(&conn)?,
        };
        for (status, n) in queries::counts(&conn)? {
            match DeliveryStatus::parse(&status) {
                Ok(DeliveryStatus::Pending) => summary.pending = n,
                Ok(DeliveryStatus::Delivered) => summary.delivered = n,
                Ok(DeliveryStatus::Failed) => summary.failed = n,
                Err(_) => {}
            }
        }
        Ok(summary)
    }

    /// The newest outbox rows (of `status`, below id `before`, at most
    /// `limit`), with the totals and the notifiers.
    pub fn notifications(
        &self,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Notifications> {
        let conn = self.store.conn()?;
        let limit = limit.clamp(1, NOTIFICATIONS_MAX);
        let deliveries = queries::list(&conn, status, before, limit)?;
        let next_cursor = (deliveries.len() == limit)
            .then(|| deliveries.last().map(|d| d.id))
            .flatten();
        let mut counts: BTreeMap<String, i64> = DeliveryStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        counts.extend(queries::counts(&conn)?);
        let notifiers = self
            .registry
            .notifiers()
            .iter()
            .map(|n| {
                let (kind, target) = match &n.target {
                    Target::Webhook(w) => ("webhook", w.url.text.clone()),
                    Target::Command(c) => ("command", c.argv.join(" ")),
                };
                NotifierView {
                    name: n.name.clone(),
                    on: n.on.iter().map(|e| e.as_str()).collect(),
                    jobs: n.jobs.clone(),
                    kind,
                    target,
                }
            })
            .collect();
        Ok(Notifications {
            deliveries,
            next_cursor,
            counts,
            notifiers,
        })
    }
}
