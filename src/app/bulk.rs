//! The bulk thread of `jobmgr serve`: carries out the bulk actions asked
//! for over HTTP, one at a time, oldest first, so a handler only records
//! the action and answers 202. Woken by the handler that recorded one, and
//! every few seconds, when it also resolves the actions of processes that
//! died (see `manager::bulk_recover`): at start that carries on the
//! actions a killed server left. On shutdown it stops between two batches,
//! leaving the action RUNNING at its cursor for the next start.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError, select};

use crate::manager::Manager;

/// How often the thread looks for actions left by dead processes.
const SCAN_EVERY: Duration = Duration::from_secs(2);

/// Runs until `stop` is dropped; `wake` says a new action was recorded.
pub fn run(m: Manager, wake: Receiver<()>, stop: Receiver<()>) {
    let stopped = || matches!(stop.try_recv(), Err(TryRecvError::Disconnected));
    while !stopped() {
        let ours = m.bulk_recover(true).unwrap_or_else(|e| {
            log::warn!("look for bulk actions to carry out: {e}");
            vec![]
        });
        for id in ours {
            let mut rest = |d| matches!(stop.recv_timeout(d), Err(RecvTimeoutError::Timeout));
            match m.bulk_carry_on(id, &mut rest, &mut |_| {}) {
                Ok(v) => log::debug!(
                    "bulk action {id}: {:?}, {} of {}",
                    v.status,
                    v.done,
                    v.total
                ),
                Err(e) => log::warn!("bulk action {id} failed: {e}"),
            }
            if stopped() {
                return;
            }
        }
        select! {
            recv(stop) -> _ => return,
            recv(wake) -> _ => {},
            default(SCAN_EVERY) => {},
        }
    }
}
