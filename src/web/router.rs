//! Request checks and routing: Host (DNS rebinding), auth, method, Origin
//! (CSRF) and body size, in that order, then the route table. (Head size,
//! request deadline and connection count are checked by the vendored
//! tiny_http, see `super::bind`.)

use tiny_http::{Method, Request};

use super::auth::{self, Via, header};
use super::http::{Handler, Pre, Reply, error_reply, segments, split_url, too_large};
use super::{
    Ctx, MAX_BODY, api_bulk, api_insight, api_jobs, api_notify, api_schedules, api_worker, assets,
    metrics,
};

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
        ["metrics"] => &[(Get, metrics::metrics)],
        ["api", "errors"] => &[(Get, api_worker::errors)],
        ["api", "job-types"] => &[(Get, api_worker::job_types)],
        ["api", "job-types", _, "pause"] => &[(Post, api_worker::pause_type)],
        ["api", "job-types", _, "resume"] => &[(Post, api_worker::resume_type)],
        ["api", "jobs"] => &[(Get, api_jobs::list), (Post, api_jobs::enqueue)],
        ["api", "jobs", "stalled"] => &[(Get, api_jobs::stalled)],
        ["api", "jobs", "cleanup-stalled"] => &[(Post, api_jobs::cleanup)],
        ["api", "jobs", "bulk"] => &[(Post, api_bulk::bulk)],
        ["api", "jobs", "count"] => &[(Get, api_insight::count)],
        ["api", "audit"] => &[(Get, api_insight::audit)],
        ["api", "insight"] => &[(Get, api_insight::insight)],
        ["api", "jobs", "bulk", _] => &[(Get, api_bulk::show)],
        ["api", "jobs", _] => &[(Get, api_jobs::show)],
        ["api", "jobs", _, "cancel"] => &[(Post, api_jobs::cancel)],
        ["api", "jobs", _, "rerun"] => &[(Post, api_jobs::rerun)],
        ["api", "jobs", _, "retry-now"] => &[(Post, api_jobs::retry_now)],
        ["api", "jobs", _, "give-up"] => &[(Post, api_jobs::give_up)],
        ["api", "jobs", _, "logs"] => &[(Get, api_jobs::logs)],
        ["api", "jobs", _, "logs", "export"] => &[(Get, api_jobs::export)],
        ["api", "notifications"] => &[(Get, api_notify::list)],
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
