//! Wakes the writer when another process commits: the WAL watch of
//! [`crate::walwatch`], anchored on this worker's own lock file, sending
//! [`Msg::DbChanged`] into the writer's channel.

use std::path::Path;

use crossbeam_channel::{Sender, TrySendError};

use crate::context::Msg;

pub(crate) use crate::walwatch::{Switch, WalWatch as Watcher};

/// Starts watching `<db>-wal`; None when inotify is unavailable (the writer
/// then polls `PRAGMA data_version` on a short interval instead).
pub fn watch(db: &Path, lock_path: &Path, tx: Sender<Msg>) -> Option<(Watcher, Switch)> {
    crate::walwatch::watch(db, lock_path, "wal-watch", move || {
        // A full queue already holds a wake-up; never block here.
        !matches!(
            tx.try_send(Msg::DbChanged),
            Err(TrySendError::Disconnected(_))
        )
    })
}
