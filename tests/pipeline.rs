//! The vendored tiny_http keeps one request in flight per connection: the
//! next is read only once the previous one is answered, a request dropped
//! unanswered is answered 500 and the connection goes on, and a connection
//! gives its place under the cap back when its client closes it or its
//! upgraded stream is dropped. Drives a bare tiny_http server, so the test
//! controls when each request is answered.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::wait_for;
use tiny_http::{Header, Limits, Request, Response, Server, StatusCode};

const WAIT: Duration = Duration::from_secs(20);

/// A server on a free loopback port with at most `max_connections` open.
fn server(max_connections: Option<usize>) -> (Arc<Server>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let limits = Limits {
        max_connections,
        ..Limits::default()
    };
    let server = Server::from_listener_with_limits(listener, None, limits).expect("server");
    let addr = server.server_addr().to_ip().expect("an IP address");
    (Arc::new(server), addr.to_string())
}

fn get(path: &str, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{connection}\r\n")
}

/// The status codes of the answers in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|a| a.get(..3)?.parse().ok())
        .collect()
}

/// Reads from `s` until `text` has been seen, or `WAIT` passes.
fn read_until(s: &mut TcpStream, text: &str) -> String {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(text) && start.elapsed() < WAIT {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn next(server: &Server) -> Request {
    server
        .recv_timeout(WAIT)
        .expect("recv")
        .expect("a request within the wait")
}

/// Three pipelined requests: the second is not handed out while the
/// first is unanswered; the second, dropped unanswered, is answered 500
/// and the third is still read and answered on the same connection.
#[test]
fn pipelined_requests_are_handed_out_one_at_a_time() {
    let (server, addr) = server(None);
    let mut c = TcpStream::connect(&addr).expect("connect");
    let burst = format!(
        "{}{}{}",
        get("/a", false),
        get("/b", false),
        get("/c", true)
    );
    c.write_all(burst.as_bytes()).expect("pipeline");
    let first = next(&server);
    assert_eq!(first.url(), "/a");
    // Nothing may arrive here: a bounded wait for what must not happen.
    let early = server
        .recv_timeout(Duration::from_millis(500))
        .expect("recv");
    if let Some(early) = early {
        // Its drop (a 500) waits for /a's answer, so /a goes first.
        drop(first);
        panic!("handed out {} before /a was answered", early.url());
    }
    first
        .respond(Response::from_string("a"))
        .expect("answer /a");
    let second = next(&server);
    assert_eq!(second.url(), "/b");
    drop(second);
    let third = next(&server);
    assert_eq!(third.url(), "/c");
    third
        .respond(Response::from_string("c"))
        .expect("answer /c");
    c.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut answers = String::new();
    let _ = c.read_to_string(&mut answers);
    assert_eq!(statuses(&answers), [200, 500, 200], "{answers}");
    assert!(answers.ends_with('c'), "{answers}");
}

/// Answers every request 200 `ok` and upgrades those asking for it
/// (writes `hello` on the upgraded stream and drops it), until unblocked.
fn responder(server: Arc<Server>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for rq in server.incoming_requests() {
            let asks = rq.headers().iter().any(|h| h.field.equiv("Upgrade"));
            if asks {
                let header = Header::from_bytes("Upgrade", "test").expect("header");
                let answer = Response::empty(StatusCode(101)).with_header(header);
                let mut stream = rq.upgrade("test", answer);
                let _ = stream.write_all(b"hello").and_then(|()| stream.flush());
            } else {
                let _ = rq.respond(Response::from_string("ok"));
            }
        }
    })
}

/// Whether a new connection is served (200) rather than refused (503).
fn served(addr: &str) -> bool {
    let Ok(mut c) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = c.write_all(get("/", true).as_bytes());
    let _ = c.set_read_timeout(Some(WAIT));
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    statuses(&answer) == [200]
}

/// With room for one connection: a keep-alive connection holds the place
/// until its client closes it; an upgraded one works and gives the place
/// back once the server drops its stream.
#[test]
fn a_closed_or_upgraded_connection_gives_its_place_back() {
    let (server, addr) = server(Some(1));
    let answering = responder(server.clone());
    let mut kept = TcpStream::connect(&addr).expect("connect");
    kept.write_all(get("/", false).as_bytes()).expect("request");
    let answer = read_until(&mut kept, "ok");
    assert_eq!(statuses(&answer), [200], "{answer}");
    assert!(!served(&addr), "a second connection served past the cap");
    drop(kept);
    wait_for(
        "a new connection to be served once the first was closed",
        WAIT,
        || served(&addr),
    );
    // The probe above may still hold the place for a moment after its
    // answer (its connection's thread ends just after): a 503 means "not
    // yet", so the upgrade is tried until it gets the place.
    let upgrade = "GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n";
    let mut upgraded = None;
    wait_for("the upgrade to get the place", WAIT, || {
        let mut c = TcpStream::connect(&addr).expect("connect");
        c.write_all(upgrade.as_bytes()).expect("upgrade request");
        let answer = read_until(&mut c, "hello");
        match statuses(&answer).as_slice() {
            [101] => {
                upgraded = Some((c, answer));
                true
            }
            [503] => false,
            other => panic!("unexpected answer {other:?}: {answer}"),
        }
    });
    let (ws, answer) = upgraded.expect("upgraded");
    assert!(answer.ends_with("hello"), "{answer}");
    wait_for(
        "a new connection to be served once the upgraded stream was dropped",
        WAIT,
        || served(&addr),
    );
    server.unblock();
    answering.join().expect("responder");
    drop(ws);
}

/// A server whose handler answers each request with the name of the
/// thread that answered it, and panics on `/panic`.
fn handled_server() -> (Server, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let handler = Arc::new(|rq: Request| {
        assert_ne!(rq.url(), "/panic", "a bug in the handler");
        let me = format!("{:?} end", std::thread::current().id());
        let _ = rq.respond(Response::from_string(me));
    });
    let server = Server::from_listener_with_handler(listener, None, Limits::default(), handler)
        .expect("server");
    let addr = server.server_addr().to_ip().expect("an IP address");
    (server, addr.to_string())
}

/// The bodies of the answers in `text` (each `Content-Length` long).
fn bodies(text: &str) -> Vec<String> {
    text.split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|a| {
            let (head, body) = a.split_once("\r\n\r\n")?;
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))?
                .trim()
                .parse()
                .ok()?;
            body.get(..len).map(str::to_string)
        })
        .collect()
}

/// With a handler, nobody calls `recv`: each request of a keep-alive
/// connection is answered, in order, by the thread that reads that
/// connection (the same one each time; another connection open meanwhile
/// has another). A panicking handler costs its request (500) and its
/// connection; the server answers the next connection.
#[test]
fn a_handler_answers_each_request_on_its_connections_thread() {
    let (_server, addr) = handled_server();
    let ask = |requests: &str| {
        let mut c = TcpStream::connect(&addr).expect("connect");
        c.write_all(requests.as_bytes()).expect("requests");
        c.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut answers = String::new();
        let _ = c.read_to_string(&mut answers);
        answers
    };
    let mut kept = TcpStream::connect(&addr).expect("connect");
    kept.write_all(get("/a", false).as_bytes())
        .expect("request");
    let first = read_until(&mut kept, " end");
    let other = ask(&get("/c", true));
    kept.write_all(get("/b", true).as_bytes()).expect("request");
    kept.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut second = String::new();
    let _ = kept.read_to_string(&mut second);
    let (first, second, other) = (bodies(&first), bodies(&second), bodies(&other));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first, second, "one connection, one thread");
    assert_eq!(other.len(), 1, "{other:?}");
    assert_ne!(first, other, "another open connection, another thread");
    let panicked = ask(&format!("{}{}", get("/panic", false), get("/d", true)));
    assert_eq!(
        statuses(&panicked),
        [500],
        "the connection ends: {panicked}"
    );
    let after = ask(&get("/e", true));
    assert_eq!(statuses(&after), [200], "served after a panic: {after}");
}

/// A request head that arrives in pieces, split inside its CRLFs, is read
/// whole; the request after it, sent in the same write as the end of its
/// body, is read too; the lines the server takes and the body it hands
/// out are exactly what was sent (the head is scanned in the connection's
/// buffer, not read a byte at a time).
#[test]
fn a_head_in_pieces_and_the_request_behind_it_are_read_exactly() {
    let (server, addr) = server(None);
    let echo = std::thread::spawn({
        let server = server.clone();
        move || {
            for mut rq in server.incoming_requests() {
                let mut body = String::new();
                let _ = rq.as_reader().read_to_string(&mut body);
                let names: Vec<String> = rq.headers().iter().map(|h| h.to_string()).collect();
                let text = format!("[{} {} {}|{body}]", rq.method(), rq.url(), names.join(";"));
                let _ = rq.respond(Response::from_string(text));
            }
        }
    });
    let mut c = TcpStream::connect(&addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let pieces = [
        "POST /first?a=1 HTTP/1.1\r",
        "\nHost: te",
        "st\r\nX-One: 1\r\nContent-Length: 5\r",
        "\n",
        "\r",
        "\nab",
        "cde",
    ];
    let ports = (
        c.peer_addr().expect("server address").port(),
        c.local_addr().expect("client address").port(),
    );
    for p in pieces {
        c.write_all(p.as_bytes()).expect("piece");
        c.flush().expect("flush");
        // Each piece read on its own: the server's socket holds no unread
        // byte before the next is sent.
        wait_for("the server to read the piece", WAIT, || {
            unread_by_server(ports) == Some(0)
        });
    }
    c.write_all(b"GET /second HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("second request");
    let answers = read_until(&mut c, "close|]");
    assert_eq!(statuses(&answers), [200, 200], "{answers}");
    assert!(
        answers.contains("[POST /first?a=1 Host: test;X-One: 1;Content-Length: 5|abcde]"),
        "{answers}"
    );
    assert!(
        answers.contains("[GET /second Host: test;Connection: close|]"),
        "{answers}"
    );
    server.unblock();
    echo.join().expect("echo thread");
}

/// Bytes the server's end of the loopback connection `(server port,
/// client port)` has received but not read (`/proc/net/tcp`'s rx_queue).
fn unread_by_server((server, client): (u16, u16)) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| {
        let hex = field.rsplit(':').next()?;
        u16::from_str_radix(hex, 16).ok()
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || port(f[1])? != server || port(f[2])? != client {
            return None;
        }
        u64::from_str_radix(f[4].rsplit(':').next()?, 16).ok()
    })
}
