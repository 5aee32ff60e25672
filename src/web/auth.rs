//! Authentication and request-origin checks: the token (from
//! `JOBMGR_TOKEN`, or generated once into `<db>.token` with mode 0600, and
//! trusted only while that is a regular file of this user's that no other
//! user can open), the session cookie and bearer header compared in
//! constant time, and the Origin check that refuses cross-site POSTs and
//! WebSocket upgrades.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use tiny_http::Request;

use crate::config::token_path;
use crate::error::{Error, Result};

/// The session cookie's name.
pub const COOKIE: &str = "jobmgr_session";

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Not at all.
    None,
    /// The browser's session cookie.
    Cookie,
    /// `Authorization: Bearer`.
    Bearer,
}

/// The token: `env_token` when set, else the one in `<db>.token`, created
/// with 32 random bytes on first start.
pub fn load_token(db: &Path, env_token: Option<&str>) -> Result<String> {
    if let Some(t) = env_token.map(str::trim).filter(|t| !t.is_empty()) {
        // It travels in a URL, a cookie and a header: keep it to the
        // characters all three carry unescaped.
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(Error::Invalid(
                "JOBMGR_TOKEN may only use letters, digits and - . _ ~".into(),
            ));
        }
        return Ok(t.to_string());
    }
    let path = token_path(db);
    match read_token_file(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_token(&path),
        Err(e) => Err(refusal(&path, e)),
    }
}

/// Reads the token in `path`. A file another user could have planted or
/// can read is refused with an error of kind `InvalidData` whose message
/// says how to fix it; other errors are those of opening or reading it.
fn read_token_file(path: &Path) -> std::io::Result<String> {
    let refuse = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    // O_NOFOLLOW: a symlink planted there is refused, not followed (and
    // never chmod-ed through). O_NONBLOCK: a FIFO opens at once instead of
    // waiting for a writer, and is then refused as not a regular file.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(format!(
                "{} is a symbolic link; remove {} and jobmgr creates a new token file",
                path.display(),
                path.display()
            )),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!(
            "{} is not a regular file; remove {} and jobmgr creates a new token file",
            path.display(),
            path.display()
        )));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(refuse(format!(
            "{} belongs to user {}, not to user {me} that runs jobmgr; remove {} and \
             jobmgr creates a new token file",
            path.display(),
            meta.uid(),
            path.display()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "{} is open to other users (mode {:04o}); chmod 600 {}",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    // A token is 65 bytes; anything much longer is not one.
    (&mut file).take(4096).read_to_end(&mut bytes)?;
    let t = String::from_utf8_lossy(&bytes).trim().to_string();
    if t.len() < 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(format!(
            "{} does not hold a token; delete it to generate a new one",
            path.display()
        )));
    }
    Ok(t)
}

/// A refused token file is invalid input with its own message; any other
/// failure is an I/O error on the file.
fn refusal(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::Invalid(e.to_string())
    } else {
        Error::io("read token", path)(e)
    }
}

/// The user whose files jobmgr may trust.
#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot
    // fail; std has no way to ask for the effective user.
    unsafe { libc::geteuid() }
}

fn create_token(path: &Path) -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("read random bytes", "/dev/urandom"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // create_new is O_CREAT|O_EXCL; O_NOFOLLOW says outright that a link
    // planted meanwhile fails the start instead of being written through.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("create token file", path))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write token file", path))?;
    Ok(token)
}

/// Compares without an early exit, so timing does not reveal how much of
/// a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Whether `given` is the token.
pub fn token_matches(token: &str, given: &str) -> bool {
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// How `request` authenticated, if at all.
pub fn authenticate(request: &Request, token: &str) -> Via {
    if let Some(v) = header(request, "Authorization") {
        let given = v.strip_prefix("Bearer ").unwrap_or("");
        return if token_matches(token, given.trim()) {
            Via::Bearer
        } else {
            Via::None
        };
    }
    let cookies = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .flat_map(|h| {
            h.value
                .as_str()
                .split(';')
                .map(str::trim)
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
    let mut ok = false;
    for c in cookies {
        if let Some(v) = c.strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')) {
            ok |= token_matches(token, v);
        }
    }
    if ok { Via::Cookie } else { Via::None }
}

/// A request without an Origin header is not from a browser page; one with
/// it must come from this server's own origin.
pub fn origin_ok(request: &Request, host: &str) -> bool {
    match header(request, "Origin") {
        None => true,
        Some(o) => o.eq_ignore_ascii_case(&format!("http://{host}")),
    }
}

/// The `Set-Cookie` value that signs a browser in.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

/// A header's value (here because the credential and origin checks are
/// its main readers; routing reads `Host` with it too).
pub fn header(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
