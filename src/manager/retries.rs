//! The actions on a run waiting for its next attempt: try it now (it
//! becomes due at once, and the worker's data_version watch sees it), or
//! give up (it fails, its error saying so). Each with its audit row in the
//! same transaction.

use super::{Actor, Manager};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::job::JobRun;
use crate::store::attempts;

/// Which action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingAction {
    RetryNow,
    GiveUp,
}

impl WaitingAction {
    fn audit_name(self) -> &'static str {
        match self {
            WaitingAction::RetryNow => "run.retry-now",
            WaitingAction::GiveUp => "run.give-up",
        }
    }
}

impl Manager {
    /// Retries now or gives up run `id`, which must be waiting for its
    /// next attempt (409 otherwise); returns the run as it is then.
    pub fn on_waiting(&self, id: i64, action: WaitingAction, by: &Actor) -> Result<JobRun> {
        let now = Timestamp::now().to_text();
        let done = self.store.write("act on a waiting run", |tx| {
            let done = match action {
                WaitingAction::RetryNow => attempts::retry_now(tx, id, &now)?,
                WaitingAction::GiveUp => attempts::give_up(tx, id, &now)?,
            };
            if done {
                by.row(action.audit_name(), Some(format!("run {id}")), None)
                    .insert(tx, &now)?;
            }
            Ok(done)
        })?;
        let run = self.get(id)?;
        if !done {
            return Err(Error::Conflict(format!(
                "run {id} is {} and not waiting for a retry",
                run.status
            )));
        }
        Ok(run)
    }
}
