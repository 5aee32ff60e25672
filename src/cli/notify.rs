//! `jobmgr notifications`: the notifiers of the config file and the
//! newest rows of the notification outbox, with their errors.

use clap::Args;

use super::output::{outln, print_json};
use crate::error::{Error, Result};
use crate::manager::{Manager, NOTIFICATIONS_MAX};
use crate::notify::DeliveryStatus;

/// `jobmgr notifications [--status S] [--limit N] [--before ID]`.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Only rows in this status: PENDING, DELIVERED or FAILED.
    #[arg(long)]
    pub status: Option<String>,
    /// Most rows shown, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only rows with a smaller id (the next page).
    #[arg(long)]
    pub before: Option<i64>,
}

/// Prints the notifiers and the outbox.
pub fn run(m: &Manager, args: &NotificationsArgs, json: bool) -> Result<i32> {
    let status = args
        .status
        .as_deref()
        .map(DeliveryStatus::parse)
        .transpose()?;
    if args.limit == 0 || args.limit > NOTIFICATIONS_MAX {
        return Err(Error::Invalid(format!(
            "--limit must be between 1 and {NOTIFICATIONS_MAX}"
        )));
    }
    let page = m.notifications(status, args.before, args.limit)?;
    if json {
        print_json(&page);
        return Ok(0);
    }
    if page.notifiers.is_empty() {
        outln!("notifiers: none ([[notify]] in jobmgr.toml)");
    }
    for n in &page.notifiers {
        let jobs = match &n.jobs {
            Some(j) => format!(", jobs {}", j.join(", ")),
            None => String::new(),
        };
        outln!(
            "notifier {}: {} {} on {}{jobs}",
            n.name,
            n.kind,
            n.target,
            n.on.join(", ")
        );
    }
    let count = |s: DeliveryStatus| page.counts.get(s.as_str()).copied().unwrap_or(0);
    outln!(
        "deliveries: {} pending, {} delivered, {} failed",
        count(DeliveryStatus::Pending),
        count(DeliveryStatus::Delivered),
        count(DeliveryStatus::Failed)
    );
    if page.deliveries.is_empty() {
        return Ok(0);
    }
    outln!(
        "{:>6}  {:<15}  {:<14}  {:<12}  {:<9}  {:>8}  {:<24}  ERROR",
        "ID",
        "EVENT",
        "SUBJECT",
        "NOTIFIER",
        "STATUS",
        "ATTEMPTS",
        "WHEN"
    );
    for d in &page.deliveries {
        let when = match d.status {
            DeliveryStatus::Delivered => super::output::when_opt(d.delivered_at.as_deref()),
            DeliveryStatus::Pending => format!("next {}", super::output::when(&d.next_attempt_at)),
            DeliveryStatus::Failed => super::output::when(&d.created_at),
        };
        let error = d
            .last_error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or("-");
        outln!(
            "{:>6}  {:<15}  {:<14}  {:<12}  {:<9}  {:>8}  {:<24}  {error}",
            d.id,
            d.event,
            d.subject,
            d.notifier,
            d.status.as_str(),
            d.attempts,
            when
        );
    }
    if let Some(c) = page.next_cursor {
        outln!("(more: --before {c})");
    }
    Ok(0)
}
