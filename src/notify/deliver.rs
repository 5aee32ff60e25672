//! The worker's notify thread: every half second it runs the scan
//! ([`super::scan`]) and delivers the outbox rows that are due, one at a
//! time, on a connection of its own. No transaction is open while a
//! receiver is being talked to; each outcome is one short transaction.
//! A receiver that answers 2xx (a program that exits 0) settles the row
//! as DELIVERED; anything else is tried again after a wait that doubles
//! from 10 s up to 30 min (on the one clock, so tests can move it), and
//! after the eighth attempt the row is FAILED with the last error.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use serde_json::Value;

use super::command::{self, Ran};
use super::scan::NotifyScan;
use super::{Notifier, Target, http};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::maintenance::ticker::{Tick, Ticker};
use crate::registry::Registry;
use crate::store::notify::{self as queries, Delivery, Outcome};
use crate::store::{self, Connection};

/// How often the thread wakes (real time).
const POLL: Duration = Duration::from_millis(500);
/// Rows taken per wake.
const BATCH: usize = 50;
/// Attempts before a row is FAILED.
pub const MAX_ATTEMPTS: i64 = 8;
/// The wait after the first failed attempt, doubling after each.
const FIRST_WAIT_MS: i64 = 10_000;
/// The longest wait.
const MAX_WAIT_MS: i64 = 1_800_000;

/// The wait after failed attempt number `attempt` (1-based).
pub fn backoff_ms(attempt: i64) -> i64 {
    let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    FIRST_WAIT_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_WAIT_MS)
}

/// Starts the notify thread for the notifiers of `registry` on `db`; it
/// ends when `stop` is dropped, at the latest after the delivery under way
/// (a command notifier is killed at once).
pub fn spawn(db: PathBuf, registry: &Registry, stop: Receiver<()>) -> Result<JoinHandle<()>> {
    let notifiers = registry.notifiers().to_vec();
    let schedules = registry
        .file_schedules()
        .iter()
        .map(|s| (s.name.clone(), s.job.clone()))
        .collect();
    let scan = NotifyScan::new(db.clone(), notifiers.clone(), schedules);
    let mut ticker = Ticker::new(POLL, POLL, vec![Box::new(scan)]);
    let mut courier = Courier {
        db: db.clone(),
        conn: None,
        notifiers,
        stop,
    };
    std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            loop {
                ticker.tick_once(&Tick {
                    now: Timestamp::now(),
                    hold: false,
                });
                if let Err(e) = courier.deliver_due() {
                    log::warn!("notify: {e}");
                }
                match courier.stop.recv_timeout(POLL) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .map_err(Error::io("spawn notify thread", db))
}

struct Courier {
    db: PathBuf,
    conn: Option<Connection>,
    notifiers: Vec<Notifier>,
    stop: Receiver<()>,
}

impl Courier {
    fn conn(&mut self) -> Result<&mut Connection> {
        if self.conn.is_none() {
            self.conn = Some(store::open_connection(&self.db)?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Internal("notify connection".into()))
    }

    /// Delivers every row due now, until none is left or the worker stops.
    fn deliver_due(&mut self) -> Result<()> {
        let now = Timestamp::now();
        let due = queries::due(self.conn()?, &now.to_text(), BATCH)?;
        for row in due {
            if !matches!(self.stop.try_recv(), Err(TryRecvError::Empty)) {
                return Ok(());
            }
            let attempt = row.attempts + 1;
            let result = match self.notifiers.iter().find(|n| n.name == row.notifier) {
                Some(n) => send(n, &row, attempt, &self.stop),
                None => Err(format!(
                    "notifier '{}' is no longer in the config file",
                    row.notifier
                )),
            };
            let now = Timestamp::now();
            let next_at = now.plus_ms(backoff_ms(attempt)).to_text();
            let outcome = match &result {
                Ok(Sent::Done) => Outcome::Delivered,
                Ok(Sent::Interrupted) => return Ok(()),
                Err(e) if attempt >= MAX_ATTEMPTS || !self.known(&row) => {
                    log::warn!(
                        "notify: {} of {} to '{}' failed for good after {attempt} attempt(s): {e}",
                        row.event,
                        row.subject,
                        row.notifier
                    );
                    Outcome::Failed { error: e }
                }
                Err(e) => {
                    log::warn!(
                        "notify: {} of {} to '{}' failed (attempt {attempt}, next at {next_at}): {e}",
                        row.event,
                        row.subject,
                        row.notifier
                    );
                    Outcome::Retry {
                        next_at: &next_at,
                        error: e,
                    }
                }
            };
            let now_text = now.to_text();
            store::write_on(self.conn()?, "record notification attempt", |tx| {
                queries::record(tx, row.id, attempt, outcome, &now_text)
            })?;
        }
        Ok(())
    }

    fn known(&self, row: &Delivery) -> bool {
        self.notifiers.iter().any(|n| n.name == row.notifier)
    }
}

/// What a send came to, when it was not an error.
enum Sent {
    Done,
    /// The worker is stopping; the row stays as it was.
    Interrupted,
}

/// One attempt at delivering `row` through `n`.
fn send(
    n: &Notifier,
    row: &Delivery,
    attempt: i64,
    stop: &Receiver<()>,
) -> std::result::Result<Sent, String> {
    let mut payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut payload {
        m.insert("deliveryId".into(), row.id.into());
        m.insert("attempt".into(), attempt.into());
    }
    match &n.target {
        Target::Webhook(hook) => {
            let id = row.id.to_string();
            let headers = [
                ("Idempotency-Key", format!("jobmgr-{id}")),
                ("X-Jobmgr-Delivery", id),
                ("X-Jobmgr-Event", row.event.clone()),
                ("X-Jobmgr-Attempt", attempt.to_string()),
            ];
            let body = payload.to_string();
            match http::post_json(hook, &headers, body.as_bytes())? {
                code if (200..300).contains(&code) => Ok(Sent::Done),
                code => Err(format!("{} answered HTTP {code}", hook.url.text)),
            }
        }
        Target::Command(cmd) => {
            let text = |k: &str| match payload.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            let env: Vec<(String, String)> = [
                ("JOBMGR_EVENT", row.event.clone()),
                ("JOBMGR_DELIVERY_ID", row.id.to_string()),
                ("JOBMGR_NOTIFIER", row.notifier.clone()),
                ("JOBMGR_ATTEMPT", attempt.to_string()),
                ("JOBMGR_SUBJECT", row.subject.clone()),
                ("JOBMGR_RUN_ID", text("runId")),
                ("JOBMGR_JOB_NAME", text("job")),
                ("JOBMGR_ERROR", text("error")),
                ("JOBMGR_URL", text("url")),
                ("JOBMGR_TEXT", text("text")),
                ("JOBMGR_PAYLOAD", payload.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            match command::run(cmd, &env, stop) {
                Ran::Ok => Ok(Sent::Done),
                Ran::Interrupted => Ok(Sent::Interrupted),
                Ran::Failed(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_ten_seconds_up_to_half_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [
                10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000
            ]
        );
        assert_eq!(backoff_ms(40), MAX_WAIT_MS);
    }
}
