//! jobmgr: limits on what one client can make the server hold (memory,
//! time, threads) before the application sees a request.

use std::time::Duration;

use crate::{Response, ResponseBox, StatusCode};

/// What the server accepts from clients, checked while a request is read.
///
/// Pass it to [`Server::from_listener_with_limits`](crate::Server::from_listener_with_limits).
/// The defaults bound the request head; the other limits are off.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request line or header line, in bytes (without CRLF). A
    /// longer request line is answered 414, a longer header line 431; the
    /// connection is then closed.
    pub max_line: usize,
    /// Most header lines in one request (431 past it).
    pub max_headers: usize,
    /// Largest request head (request line and headers), in bytes (431 past it).
    pub max_head: usize,
    /// Bodies up to this many bytes are read whole, by the connection's own
    /// thread, before the request is handed out (a client sending a body
    /// slowly then holds no thread of the application's). A longer body,
    /// or the rest of a chunked one past this size, is read by whoever
    /// reads the request.
    pub max_buffered_body: usize,
    /// Time a request may take to arrive, from its first byte, head and
    /// body included; past it the request is answered 408 and the
    /// connection closed. `None`: only each read is bounded, by the
    /// socket's read timeout.
    pub request_timeout: Option<Duration>,
    /// Connections served at once, each on a thread of its own; past it a
    /// new connection is answered 503 and closed. `None`: no cap.
    pub max_connections: Option<usize>,
    /// Builds the answers the server sends on its own (400, 408, 414, 417,
    /// 431, 503), so that they match the application's error format. It
    /// gets the status code; `Connection: close` is added.
    pub refusal: fn(StatusCode) -> ResponseBox,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 8 * 1024,
            max_headers: 100,
            max_head: 64 * 1024,
            max_buffered_body: 1024,
            request_timeout: None,
            max_connections: None,
            refusal: empty_refusal,
        }
    }
}

/// The default refusal: the status code and no body.
pub fn empty_refusal(status: StatusCode) -> ResponseBox {
    Response::empty(status).boxed()
}
