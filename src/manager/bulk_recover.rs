//! The bulk actions a dead process left RUNNING. Their rows say exactly
//! how far they got (see [`super::bulk_run`]), so nothing is lost either
//! way; what differs is what happens next:
//! - one `jobmgr serve` was carrying out (asked for over HTTP) is taken
//!   over and carried on from its cursor by the next `serve`: nobody
//!   meant it to stop;
//! - one a CLI process was carrying out is marked INTERRUPTED with what it
//!   did: whoever killed the command (Ctrl-C included) meant it to stop,
//!   and issuing the command again finishes the rest, since an action only
//!   acts on runs it still applies to.

use super::Manager;
use super::bulk_run::me;
use super::bulk_view::{BulkRunner, BulkState};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::bulk_actions;

/// Whether process `pid` is alive (running or stopped, not a zombie).
/// A pid that /proc cannot read counts as gone.
fn alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X" | "x"))
}

impl Manager {
    /// Resolves the RUNNING actions whose process is gone: a dead CLI's are
    /// marked INTERRUPTED; with `serve`, a dead server's are taken over.
    /// Returns the serve-run actions this process owns now (those it
    /// started itself included), oldest first, for it to carry on.
    pub fn bulk_recover(&self, serve: bool) -> Result<Vec<i64>> {
        let running = {
            let conn = self.store.conn()?;
            bulk_actions::running(&conn)?
        };
        let mut ours = Vec::new();
        for row in running {
            let by_serve = row.runner == BulkRunner::Serve.as_str();
            if row.owner_pid == me() {
                if serve && by_serve {
                    ours.push(row.id);
                }
                continue;
            }
            if alive(row.owner_pid) {
                continue;
            }
            if by_serve {
                if serve
                    && self.store.write("take over bulk action", |tx| {
                        bulk_actions::take_over(tx, row.id, row.owner_pid, me())
                    })?
                {
                    log::info!(
                        "carrying on bulk action {} ({} of {} runs done) left by process {}",
                        row.id,
                        row.done,
                        row.total,
                        row.owner_pid
                    );
                    ours.push(row.id);
                }
                continue;
            }
            let error = format!(
                "interrupted: the jobmgr process (pid {}) carrying it out ended after {} of {} \
                 runs; issue the command again to finish",
                row.owner_pid, row.done, row.total
            );
            let now = Timestamp::now().to_text();
            self.store.write("end bulk action", |tx| {
                bulk_actions::end(tx, row.id, BulkState::Interrupted.as_str(), &error, &now)
            })?;
        }
        Ok(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::alive;

    #[test]
    fn this_process_is_alive_and_a_pid_past_the_maximum_is_not() {
        assert!(alive(i64::from(std::process::id())));
        assert!(!alive(i64::from(i32::MAX)));
    }
}
