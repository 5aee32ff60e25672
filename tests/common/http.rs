//! A tiny HTTP/1.1 client over `std::net::TcpStream` and WebSocket helpers
//! for talking to `jobmgr serve` in tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// How long a test waits on one socket read before failing.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value (first match, case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The `error.code` of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Sends one request to `addr` ("127.0.0.1:PORT") and reads the whole
/// answer. `headers` are added as given; Host defaults to `addr`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to server");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).expect("write request");
    if let Some(b) = body {
        // The server may answer (413) and close before reading it all.
        let _ = s.write_all(b);
    }
    read_response(s)
}

fn read_response(s: TcpStream) -> Resp {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("read status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("read header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if status == 101 {
        // Switched protocols: the socket stays open; there is no body.
    } else if let Some(n) = length.filter(|_| !chunked) {
        body.resize(n, 0);
        r.read_exact(&mut body).expect("read body");
    } else if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("read chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("read chunk");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let _ = r.read_to_end(&mut body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// A client for one server: its address and token.
#[derive(Clone)]
pub struct Api {
    pub addr: String,
    pub token: String,
}

impl Api {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GET with the bearer token.
    pub fn get(&self, path: &str) -> Resp {
        request(
            &self.addr,
            "GET",
            path,
            &[("Authorization", &self.bearer())],
            None,
        )
    }

    /// POST of a JSON body with the bearer token.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        let b = body.to_string();
        request(
            &self.addr,
            "POST",
            path,
            &[
                ("Authorization", &self.bearer()),
                ("Content-Type", "application/json"),
            ],
            Some(b.as_bytes()),
        )
    }

    /// POST with the session cookie and this server's own Origin, as the page does.
    pub fn post_as_page(&self, path: &str, body: &Value) -> Resp {
        let b = body.to_string();
        let cookie = format!("jobmgr_session={}", self.token);
        let origin = format!("http://{}", self.addr);
        request(
            &self.addr,
            "POST",
            path,
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("Content-Type", "application/json"),
            ],
            Some(b.as_bytes()),
        )
    }

    /// GET that must answer 200; returns the JSON.
    pub fn ok(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Opens a WebSocket on `path` ("/ws" or "/ws?follow=...") with the bearer token.
    pub fn ws(&self, path: &str) -> WebSocket<TcpStream> {
        let mut req = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("ws request");
        req.headers_mut().insert(
            "Authorization",
            self.bearer().parse().expect("header value"),
        );
        let stream = TcpStream::connect(&self.addr).expect("connect ws");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        let (ws, resp) = tungstenite::client(req, stream).expect("WebSocket handshake");
        assert_eq!(resp.status().as_u16(), 101);
        ws
    }
}

/// The next text message as JSON (pings and pongs skipped); None when the
/// socket closed.
pub fn next_json(ws: &mut WebSocket<TcpStream>) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => {
                return Some(serde_json::from_str(t.as_str()).expect("message is JSON"));
            }
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return None;
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return None;
            }
            Err(e) => panic!("WebSocket read: {e}"),
        }
    }
}

/// Reads messages until `pred` holds for one (returned), or panics after
/// `within` naming `what`. Every message read is passed to `seen`.
pub fn wait_message(
    ws: &mut WebSocket<TcpStream>,
    what: &str,
    within: Duration,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match next_json(ws) {
            Some(m) if pred(&m) => return m,
            Some(_) => {}
            None => panic!("socket closed while waiting for {what}"),
        }
    }
    panic!("timed out after {within:?} waiting for {what}");
}
