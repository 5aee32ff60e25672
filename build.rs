//! Embeds the git commit (the worker's version), refuses to build without
//! the admin page, and rebuilds when migrations or the admin assets change.
use std::process::Command;

/// The files the admin page cannot work without: a build that lacks them
/// fails instead of producing a server whose page is missing.
const ADMIN_FILES: [&str; 2] = ["assets/admin/index.html", "assets/admin/styles.css"];

fn main() {
    for f in ADMIN_FILES {
        if !std::path::Path::new(f).is_file() {
            panic!(
                "{f} is missing: jobmgr embeds the admin page from assets/admin/ and cannot be \
                 built without it (restore it from git)"
            );
        }
    }
    println!("cargo:rerun-if-changed=migrations");
    // rust-embed compiles the admin page in; new files must trigger a rebuild.
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let sha = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let version = sha.unwrap_or_else(|| std::env::var("CARGO_PKG_VERSION").unwrap_or_default());
    println!("cargo:rustc-env=JOBMGR_VERSION={version}");
}
