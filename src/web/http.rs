//! Request checks and routing: Host (DNS rebinding), auth, method, Origin
//! (CSRF) and body size, in that order, then the route table; and the reply
//! helpers every handler uses. (Head size, request deadline and connection
//! count are checked by the vendored tiny_http, see `super::bind`.)

use std::collections::HashMap;
use std::io::{Cursor, Read};

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, ResponseBox, StatusCode};

use super::auth::{self, Via};
use super::{Ctx, MAX_BODY, api_jobs, api_schedules, api_worker, assets};
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
    /// The client's address, for the audit trail.
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
            source: source_of(request),
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

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

/// Runs every check that does not need the body; on failure, the reply.
pub fn precheck(ctx: &Ctx, request: &Request) -> std::result::Result<Pre, Reply> {
    let host = header(request, "Host").unwrap_or_default();
    if !ctx.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(error_reply(403, "forbidden_host", "unexpected Host header"));
    }
    let (path, query) = split_url(request.url());
    let method = request.method().clone();
    // Probes for supervisors and load balancers answer without a token.
    let probe = match path.as_str() {
        "/healthz" => Some(api_worker::healthz as Handler),
        "/readyz" => Some(api_worker::readyz as Handler),
        _ => None,
    };
    if let Some(handler) = probe
        && method == Method::Get
    {
        return Ok(Pre {
            path,
            query,
            via: Via::None,
            handler,
            websocket: false,
        });
    }
    let html = path.starts_with("/admin/") || path == "/";
    if path == "/admin/jobs"
        && method == Method::Get
        && let Some(t) = query.get("token")
    {
        return Err(if auth::token_matches(&ctx.token, t) {
            assets::sign_in(t)
        } else {
            assets::unauthorized_page()
        });
    }
    let via = auth::authenticate(request, &ctx.token);
    if via == Via::None {
        return Err(if html {
            assets::unauthorized_page()
        } else {
            error_reply(401, "unauthorized", "missing or wrong token")
        });
    }
    let segs = segments(&path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let websocket = segs == ["ws"];
    let handlers = route(&segs).ok_or_else(|| error_reply(404, "not_found", "no such route"))?;
    let handler = handlers
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, h)| *h)
        .ok_or_else(|| error_reply(405, "method_not_allowed", "method not allowed"))?;
    let changes = matches!(method, Method::Post | Method::Put | Method::Delete);
    if (changes || websocket) && !auth::origin_ok(request, &host) {
        return Err(error_reply(
            403,
            "forbidden_origin",
            "cross-origin request refused",
        ));
    }
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    Ok(Pre {
        path,
        query,
        via,
        handler,
        websocket,
    })
}

type Routes = &'static [(Method, Handler)];

/// The route table.
fn route(segs: &[&str]) -> Option<Routes> {
    use Method::{Delete, Get, Post, Put};
    Some(match segs {
        [] => &[(Get, assets::home)],
        ["admin", "jobs"] => &[(Get, assets::page)],
        ["admin", "assets", ..] => &[(Get, assets::asset)],
        ["ws"] => &[(Get, api_worker::not_upgraded)],
        ["api", "worker"] => &[(Get, api_worker::status)],
        ["api", "worker", "start"] => &[(Post, api_worker::start)],
        ["api", "worker", "stop"] => &[(Post, api_worker::stop)],
        ["api", "stats"] => &[(Get, api_worker::stats)],
        ["api", "errors"] => &[(Get, api_worker::errors)],
        ["api", "job-types"] => &[(Get, api_worker::job_types)],
        ["api", "job-types", _, "pause"] => &[(Post, api_worker::pause_type)],
        ["api", "job-types", _, "resume"] => &[(Post, api_worker::resume_type)],
        ["api", "jobs"] => &[(Get, api_jobs::list), (Post, api_jobs::enqueue)],
        ["api", "jobs", "stalled"] => &[(Get, api_jobs::stalled)],
        ["api", "jobs", "cleanup-stalled"] => &[(Post, api_jobs::cleanup)],
        ["api", "jobs", _] => &[(Get, api_jobs::show)],
        ["api", "jobs", _, "cancel"] => &[(Post, api_jobs::cancel)],
        ["api", "jobs", _, "rerun"] => &[(Post, api_jobs::rerun)],
        ["api", "jobs", _, "retry-now"] => &[(Post, api_jobs::retry_now)],
        ["api", "jobs", _, "give-up"] => &[(Post, api_jobs::give_up)],
        ["api", "jobs", _, "logs"] => &[(Get, api_jobs::logs)],
        ["api", "jobs", _, "logs", "export"] => &[(Get, api_jobs::export)],
        ["api", "schedules"] => &[(Get, api_schedules::list), (Post, api_schedules::create)],
        ["api", "schedules", "preview"] => &[(Get, api_schedules::preview)],
        ["api", "schedules", _] => &[
            (Get, api_schedules::show),
            (Put, api_schedules::update),
            (Delete, api_schedules::delete),
        ],
        ["api", "schedules", _, "run"] => &[(Post, api_schedules::run)],
        ["api", "schedules", _, "pause"] => &[(Post, api_schedules::pause)],
        ["api", "schedules", _, "resume"] => &[(Post, api_schedules::resume)],
        _ => return None,
    })
}

/// A header's value.
pub fn header(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

fn split_url(url: &str) -> (String, HashMap<String, String>) {
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
