//! Who takes an admin action: the web client's address, or the CLI and
//! its OS user. Every action that changes runs or the worker names its
//! actor, and its audit row is written in the action's own transaction.

use std::os::unix::fs::MetadataExt;

use crate::store::audit::AuditRow;

/// Where an admin action came from, as its audit row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The client's address, or `cli`.
    pub source: String,
    /// The OS user, for the CLI.
    pub user: Option<String>,
}

impl Actor {
    /// A request to the web server from `addr`.
    pub fn web(addr: &str) -> Actor {
        Actor {
            source: addr.to_string(),
            user: None,
        }
    }

    /// The CLI, run by [`os_user`].
    pub fn cli() -> Actor {
        Actor {
            source: "cli".into(),
            user: Some(os_user()),
        }
    }

    /// The audit row of `action` by this actor.
    pub(crate) fn row(
        &self,
        action: &'static str,
        target: Option<String>,
        detail: Option<String>,
    ) -> AuditRow {
        AuditRow {
            action,
            target,
            source: self.source.clone(),
            user: self.user.clone(),
            detail,
        }
    }
}

/// The user running this process: `$USER`, else `$LOGNAME` (what a login
/// shell, sudo and su set), else `uid N` for the effective uid (the owner
/// of `/proc/self`), for a cron job or service with a bare environment.
pub fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .or_else(|| {
            std::fs::metadata("/proc/self")
                .ok()
                .map(|m| format!("uid {}", m.uid()))
        })
        .unwrap_or_else(|| "unknown".into())
}
