//! Requests and replies: the checked request a handler reads, the URL
//! decoding behind it, and the reply helpers every handler uses. The
//! checks and the route table are in `router.rs`, which alone knows the
//! handlers, so no handler and this module depend on each other.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use serde_json::{Value, json};
use tiny_http::{Header, Request, Response, ResponseBox, StatusCode};

use super::auth::Via;
use super::{Ctx, MAX_BODY};
use crate::error::{Error, Result};

/// A reply ready to send.
pub type Reply = ResponseBox;

/// What a route handler is.
pub type Handler = fn(&Ctx, &Req) -> Result<Reply>;

/// A checked request, owning what handlers read.
pub struct Req {
    pub path: String,
    /// Path segments, e.g. `["api", "jobs", "7"]`.
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
    /// How the caller authenticated.
    pub via: Via,
    /// The client's address and the channel, for the audit trail:
    /// `127.0.0.1:5000 (page)` for the page's cookie, `(api)` for a bearer
    /// token, so the Audit panel can tell them apart.
    pub source: String,
    pub handler: Handler,
}

/// What [`precheck`] learned about an acceptable request.
pub struct Pre {
    pub path: String,
    pub query: HashMap<String, String>,
    pub via: Via,
    pub handler: Handler,
    pub websocket: bool,
}

impl Req {
    /// Builds the handler's view of a checked request.
    pub fn new(request: &Request, pre: Pre, body: Vec<u8>) -> Req {
        Req {
            segments: segments(&pre.path),
            path: pre.path,
            query: pre.query,
            body,
            via: pre.via,
            source: format!(
                "{} ({})",
                source_of(request),
                if pre.via == Via::Cookie {
                    "page"
                } else {
                    "api"
                }
            ),
            handler: pre.handler,
        }
    }

    /// A query parameter, None when absent or empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The run id in segment `i`.
    pub fn id_at(&self, i: usize) -> Result<i64> {
        let text = self.segments.get(i).map(String::as_str).unwrap_or("");
        text.parse().map_err(|_| Error::NotFound {
            what: "job run",
            id: text.to_string(),
        })
    }
}

/// The client's address text.
pub fn source_of(request: &Request) -> String {
    request
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub(super) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

pub(super) fn split_url(url: &str) -> (String, HashMap<String, String>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path.to_string(), query)
}

/// Decodes `%XX` escapes and `+` as a space.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A header built from static parts.
pub fn hdr(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("static header")
    })
}

/// A reply with `body`, `content_type` and the headers every reply carries.
pub fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let len = body.len();
    stream_reply(status, content_type, Box::new(Cursor::new(body)), Some(len))
}

/// A reply whose body is read from `body` (chunked when `len` is None).
pub fn stream_reply(
    status: u16,
    content_type: &str,
    body: Box<dyn Read + Send>,
    len: Option<usize>,
) -> Reply {
    let headers = vec![
        hdr("Content-Type", content_type),
        hdr("X-Content-Type-Options", "nosniff"),
        hdr("Cache-Control", "no-store"),
        hdr("Referrer-Policy", "no-referrer"),
    ];
    Response::new(StatusCode(status), headers, body, len, None)
}

/// A JSON reply.
pub fn json_reply(status: u16, v: &Value) -> Reply {
    reply(status, "application/json", v.to_string().into_bytes())
}

/// `{"error": {"code", "message"}}` with `status`.
pub fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The reply for a domain error.
pub fn error_from(e: &Error) -> Reply {
    if e.http_status() >= 500 {
        log::error!("{e}");
    }
    // `class` is the coarse, stable kind a client branches on; `code` may
    // name a finer case within it.
    json_reply(
        e.http_status(),
        &json!({"error": {"code": e.code(), "class": e.class().code(), "message": e.to_string()}}),
    )
}

/// The answer tiny_http sends on its own, before the request is whole
/// (malformed, too slow, head too large) or accepted (too many connections).
pub fn refusal(status: StatusCode) -> Reply {
    let (code, message) = match status.0 {
        408 => ("request_timeout", "the request did not arrive in time"),
        414 => ("uri_too_long", "the request line is too long"),
        431 => ("headers_too_large", "request headers are too large"),
        503 => ("busy", "too many open connections"),
        _ => ("invalid_input", "malformed request"),
    };
    error_reply(status.0, code, message)
}

/// 413 for a body over the limit.
pub fn too_large() -> Reply {
    error_reply(
        413,
        "body_too_large",
        &format!("request body is larger than {} KiB", MAX_BODY / 1024),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        let (p, q) = split_url("/api/jobs?status=FAILED,QUEUED&q=x%26y&empty");
        assert_eq!(p, "/api/jobs");
        assert_eq!(q["status"], "FAILED,QUEUED");
        assert_eq!(q["q"], "x&y");
        assert_eq!(q["empty"], "");
    }
}
