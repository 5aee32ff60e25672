//! When the next SCHEDULED run becomes due, as the writer knows it: read
//! again whenever another process committed (a new delayed run may be
//! earlier) and after each commit that queued due runs.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{Connection, due};

/// The longest the writer sleeps while a run is due later: the wall clock
/// may be stepped (or, in tests, moved) while it sleeps on the monotonic
/// one, so it looks again this often.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// The earliest `runAt` of a SCHEDULED run.
#[derive(Debug, Default)]
pub(super) struct NextDue(Option<Timestamp>);

impl NextDue {
    /// Reads it from the database.
    pub(super) fn read(conn: &Connection) -> Result<NextDue> {
        Ok(NextDue(due::next_due(conn)?))
    }

    /// What a commit that queued the due runs found next.
    pub(super) fn set(&mut self, next: Option<Timestamp>) {
        self.0 = next;
    }

    /// Whether a run is due at `now`.
    pub(super) fn is_due(&self, now: Timestamp) -> bool {
        self.0.is_some_and(|t| t <= now)
    }

    /// How long to sleep at most before looking again.
    pub(super) fn wait(&self, now: Timestamp) -> Option<Duration> {
        let t = self.0?;
        let ms = u64::try_from(t.0.saturating_sub(now.0)).unwrap_or(0);
        Some(Duration::from_millis(ms).min(LOOK_AGAIN))
    }
}
