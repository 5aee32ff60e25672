//! The embedded admin page: `assets/admin/` compiled into the binary with
//! rust-embed, served with a strict Content-Security-Policy, plus the
//! sign-in redirect and the "open the printed URL" page.

use super::http::{Reply, Req, error_reply, hdr, reply};
use super::{Ctx, auth};
use crate::error::Result;
use rust_embed::RustEmbed;

/// The policy every HTML answer carries.
pub const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                       style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The files of the admin page. No `allow_missing`: a build without
/// `assets/admin/` fails here (and `build.rs` says which file is missing),
/// rather than shipping a server whose page answers 404.
#[derive(RustEmbed)]
#[folder = "assets/admin/"]
pub struct Assets;

/// The Content-Type for a file name.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn html(status: u16, body: Vec<u8>) -> Reply {
    let mut r = reply(status, "text/html; charset=utf-8", body);
    r.add_header(hdr("Content-Security-Policy", CSP));
    r.add_header(hdr("X-Frame-Options", "DENY"));
    r
}

/// `GET /admin/jobs`: the page.
pub fn page(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(match Assets::get("index.html") {
        Some(f) => html(200, f.data.into_owned()),
        None => html(
            404,
            b"<!doctype html><title>jobmgr</title><p>This build has no admin page.</p>".to_vec(),
        ),
    })
}

/// `GET /`: the admin page's address.
pub fn home(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let mut r = reply(
        303,
        "text/plain; charset=utf-8",
        b"see /admin/jobs\n".to_vec(),
    );
    r.add_header(hdr("Location", "/admin/jobs"));
    Ok(r)
}

/// `GET /admin/assets/<path>`: one embedded file.
pub fn asset(_ctx: &Ctx, req: &Req) -> Result<Reply> {
    let rel = req.segments[2..].join("/");
    if rel.is_empty() || req.segments.iter().any(|s| s == ".." || s.starts_with('.')) {
        return Ok(error_reply(404, "not_found", "no such file"));
    }
    Ok(match Assets::get(&rel) {
        Some(f) => {
            let ct = content_type(&rel);
            if ct.starts_with("text/html") {
                html(200, f.data.into_owned())
            } else {
                reply(200, ct, f.data.into_owned())
            }
        }
        None => error_reply(404, "not_found", "no such file"),
    })
}

/// The answer to `GET /admin/jobs?token=<right token>`: the session cookie
/// and a redirect that takes the token out of the address bar.
pub fn sign_in(token: &str) -> Reply {
    let mut r = reply(303, "text/plain; charset=utf-8", b"signed in\n".to_vec());
    r.add_header(hdr("Set-Cookie", &auth::session_cookie(token)));
    r.add_header(hdr("Location", "/admin/jobs"));
    r
}

/// 401 for the HTML pages.
pub fn unauthorized_page() -> Reply {
    html(
        401,
        b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jobmgr: sign in</title></head>\
<body><h1>Not signed in</h1><p>Open the admin URL that <code>jobmgr serve</code> printed when it started \
(it ends in <code>?token=...</code>).</p></body></html>\n"
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("styles.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("logo.SVG"), "image/svg+xml");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("favicon.ico"), "image/x-icon");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("README"), "application/octet-stream");
    }
}
