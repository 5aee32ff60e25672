//! Built-in job types: demos that show every kind of progress, and
//! maintenance jobs on jobmgr's own database.

mod backup;
mod backup_rotation;
mod demo;
pub(crate) mod imagehead;
mod media;
mod mediafs;
mod prune;

use crate::registry::Registry;

/// Names of the demo types, which a config file may turn off.
pub const DEMO_TYPES: [&str; 5] = [
    "demo-known-total",
    "demo-quick",
    "demo-unknown-total",
    "demo-multi-phase",
    "demo-flaky",
];

/// A registry holding every built-in job type.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    r.register(demo::known_total());
    r.register(demo::quick());
    r.register(demo::unknown_total());
    r.register(demo::multi_phase());
    r.register(demo::flaky());
    r.register(prune::prune_history());
    r.register(backup::backup_database());
    r.register(media::media_metadata_batch());
    r
}
