//! Embeds the git commit (the worker's version) and rebuilds when migrations or the admin assets change.
use std::process::Command;

fn main() {
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
