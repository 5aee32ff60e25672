//! The WebSocket endpoint. `/ws` sends a snapshot, then the hub's events
//! from this client's bounded queue, written by the one live writer
//! ([`super::live`]); `/ws?follow=ID&after=LINE` sends one run's log lines
//! as they are committed, then `end`, from a thread of its own. Both are
//! server-to-client only: an upgraded tiny_http stream cannot be read and
//! written from two threads, so client requests go over the HTTP API.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use serde_json::{Value, json};
use tiny_http::{ReadWrite, Request, Response, StatusCode};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::auth::header;
use super::http::{Pre, error_from, error_reply, hdr};
use super::live::{self, Client};
use super::{Ctx, MAX_SOCKETS, worker_json};
use crate::error::{Error, Result};
use crate::events::{Subscription, run_json};
use crate::job::JobStatus;
use crate::query::LogFilter;

/// Active runs in the snapshot, at most.
const SNAPSHOT_ACTIVE: usize = 200;
/// How often a follow socket looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Lines per `log` message.
const FOLLOW_PAGE: usize = 500;

type Socket = WebSocket<Box<dyn ReadWrite + Send>>;

/// Upgrades `request`: a live socket goes to the live writer, a follow
/// socket to a thread of its own, which [`super::Sockets`] keeps so that
/// shutdown joins it.
pub fn upgrade(ctx: &Ctx, request: Request, pre: Pre) {
    let key = header(&request, "Sec-WebSocket-Key");
    let is_upgrade =
        header(&request, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = key.filter(|_| is_upgrade) else {
        let _ = request.respond(error_reply(
            400,
            "invalid_input",
            "expected a WebSocket upgrade",
        ));
        return;
    };
    let wanted = match parse_follow(ctx, &pre) {
        Ok(f) => f,
        Err(e) => {
            let _ = request.respond(error_from(&e));
            return;
        }
    };
    let job = match wanted {
        Some((id, after)) => {
            if ctx.followers.fetch_add(1, Ordering::SeqCst) >= MAX_SOCKETS {
                ctx.followers.fetch_sub(1, Ordering::SeqCst);
                let _ = request.respond(error_reply(503, "busy", "too many live connections"));
                return;
            }
            Job::Follow(id, after)
        }
        None => match ctx.hub.subscribe() {
            Some(sub) => Job::Live(sub),
            None => {
                let _ = request.respond(error_reply(503, "busy", "too many live connections"));
                return;
            }
        },
    };
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let response =
        Response::new_empty(StatusCode(101)).with_header(hdr("Sec-WebSocket-Accept", &accept));
    let (id, after) = match job {
        Job::Live(sub) => return upgrade_live(ctx, request, response, sub),
        Job::Follow(id, after) => (id, after),
    };
    let stream = request.upgrade("websocket", response);
    let ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    // The thread borrows nothing from the handler: it gets its own handles.
    let (manager, stop) = (ctx.manager.clone(), ctx.shutdown.clone());
    let followers = ctx.followers.clone();
    let spawned = std::thread::Builder::new()
        .name("ws-follow".into())
        .spawn(move || {
            follow(ws, &manager, id, after, &stop);
            followers.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        Ok(thread) => ctx.sockets.add(thread),
        Err(e) => {
            log::error!("spawn WebSocket thread: {e}");
            ctx.followers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A live socket: the snapshot is read here, after subscribing (so no
/// change committed after it is missed) and before the upgrade (so a
/// failure still gets an HTTP answer), then the socket goes to the live
/// writer with the snapshot as its first message.
fn upgrade_live(
    ctx: &Ctx,
    request: Request,
    response: Response<std::io::Empty>,
    sub: Subscription,
) {
    let first = match snapshot(&ctx.manager, ctx.supervisor.child_pid().get()) {
        Ok(s) => s.to_string(),
        Err(e) => {
            let _ = request.respond(error_from(&e));
            return;
        }
    };
    let socket = match request.socket_fd().map(live::duplicate_socket) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            // Most likely out of descriptors.
            log::warn!("live socket: {e}");
            let _ = request.respond(error_reply(503, "busy", "too many live connections"));
            return;
        }
        None => {
            let _ = request.respond(error_reply(
                500,
                "internal_error",
                "live updates need a plain TCP connection",
            ));
            return;
        }
    };
    let stream = request.upgrade("websocket", response);
    match Client::new(sub, stream, socket, &first) {
        Ok(client) => ctx.live.add(client),
        Err(e) => log::warn!("live socket: {e}"),
    }
}

enum Job {
    Live(Subscription),
    Follow(i64, Option<i64>),
}

fn parse_follow(ctx: &Ctx, pre: &Pre) -> Result<Option<(i64, Option<i64>)>> {
    let get = |k: &str| {
        pre.query
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let Some(f) = get("follow") else {
        return Ok(None);
    };
    let id: i64 = f
        .parse()
        .map_err(|_| Error::Invalid(format!("follow must be a run id, got '{f}'")))?;
    let after = get("after")
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| Error::Invalid(format!("after must be a line id, got '{a}'")))
        })
        .transpose()?;
    ctx.manager.get(id)?;
    Ok(Some((id, after)))
}

fn send(ws: &mut Socket, text: String) -> bool {
    ws.send(Message::Text(text.into())).is_ok()
}

fn snapshot(manager: &crate::manager::Manager, pid: Option<u32>) -> Result<Value> {
    let worker = worker_json(&manager.worker_status()?, pid);
    let stats = manager.stats()?;
    let mut active = manager.in_status(JobStatus::Running, SNAPSHOT_ACTIVE)?;
    for waiting in [JobStatus::Queued, JobStatus::Waiting, JobStatus::Scheduled] {
        let room = SNAPSHOT_ACTIVE - active.len();
        if room > 0 {
            active.extend(manager.in_status(waiting, room)?);
        }
    }
    let active: Vec<Value> = active
        .iter()
        .map(|r| {
            let mut v = run_json(r);
            manager.add_usual(&mut v, r);
            v
        })
        .collect();
    Ok(json!({"type": "snapshot", "worker": worker, "stats": stats, "active": active}))
}

fn follow(
    mut ws: Socket,
    manager: &crate::manager::Manager,
    id: i64,
    mut after: Option<i64>,
    stop: &crossbeam_channel::Receiver<()>,
) {
    loop {
        // Read the status before the lines: a run seen finished here has
        // committed its last lines already, so they are all read below.
        let finished = match manager.get(id) {
            Ok(r) => r.status.is_finished(),
            Err(e) => {
                log::warn!("follow run {id}: {e}");
                false
            }
        };
        loop {
            let filter = LogFilter {
                after_id: after,
                limit: FOLLOW_PAGE,
                ..LogFilter::default()
            };
            let lines = match manager.logs(id, &filter) {
                Ok(l) => l,
                Err(e) => {
                    log::warn!("follow run {id}: {e}");
                    Vec::new()
                }
            };
            let Some(last) = lines.last().map(|l| l.id) else {
                break;
            };
            after = Some(last);
            let full = lines.len() == FOLLOW_PAGE;
            if !send(
                &mut ws,
                json!({"type": "log", "runId": id, "lines": lines}).to_string(),
            ) {
                return;
            }
            if !full {
                break;
            }
        }
        if finished {
            let _ = send(&mut ws, json!({"type": "end", "runId": id}).to_string());
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
        match stop.recv_timeout(FOLLOW_POLL) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => {
                let _ = ws.close(None);
                return;
            }
        }
    }
}
