//! `jobmgr serve` against clients without a token that try to exhaust it:
//! a huge announced body, bodies sent slowly, endless request heads, and
//! thousands of idle connections. Through each attack and after it, the
//! server keeps answering `/healthz` and an authenticated API call, and
//! its memory and threads stay bounded. Loopback only; every attack is
//! bounded in bytes and time and ends by itself.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Serve, TestDb, wait_for};

const WAIT: Duration = Duration::from_secs(20);
/// A server answering at all answers a small request within this.
const ANSWER: Duration = Duration::from_secs(3);
/// Resident memory the server must stay under, in kB.
const RSS_LIMIT_KB: u64 = 100 * 1024;
/// The cap on open connections that serve documents.
const MAX_CONNECTIONS: usize = 512;

/// A field of `/proc/PID/status`, as a number (VmRSS is in kB).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

fn rss_kb(s: &Serve) -> u64 {
    proc_status(s.child.id(), "VmRSS:")
}

fn open_fds(s: &Serve) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", s.child.id()))
        .expect("server descriptors")
        .count()
}

fn threads(s: &Serve) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", s.child.id()))
        .expect("server tasks")
        .count()
}

/// One GET with a short timeout; the status, None when unanswered.
fn status_of(addr: &str, path: &str, token: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(ANSWER)).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// `/healthz` and an authenticated `/api/worker` are both answered 200.
fn assert_answering(s: &Serve, when: &str) {
    let addr = &s.api.addr;
    assert_eq!(
        status_of(addr, "/healthz", None),
        Some(200),
        "/healthz {when}"
    );
    assert_eq!(
        status_of(addr, "/api/worker", Some(&s.api.token)),
        Some(200),
        "/api/worker {when}"
    );
}

/// Asserts the server process is still running.
fn assert_alive(s: &mut Serve) {
    let exited = s.child.try_wait().expect("try_wait");
    assert!(
        exited.is_none(),
        "the server died ({exited:?}):\n{}",
        s.log_text()
    );
}

/// What one attacking connection saw.
struct Outcome {
    /// Bytes it managed to send before the server cut it off.
    sent: usize,
    /// What the server answered (read while sending).
    answer: Vec<u8>,
    /// When the server ended the connection (answer read to its end).
    closed_after: Duration,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.answer);
        text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// Sends `head`, then `chunk` again and again until `total` bytes are sent,
/// the server answers or cuts the connection, or `within` has passed,
/// pausing `every` between chunks; meanwhile reads the answer.
fn attack(
    addr: &str,
    head: &[u8],
    chunk: &[u8],
    total: usize,
    every: Option<Duration>,
    within: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut r = s.try_clone().expect("clone socket");
    r.set_read_timeout(Some(within)).expect("read timeout");
    let answered = Arc::new(AtomicBool::new(false));
    let seen = answered.clone();
    let reader = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            seen.store(true, Ordering::SeqCst);
        }
        (answer, start.elapsed())
    });
    let mut sent = 0;
    if s.write_all(head).is_ok() {
        sent = head.len();
        while sent < total && start.elapsed() < within && !answered.load(Ordering::SeqCst) {
            match s.write(chunk) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
            if let Some(pause) = every {
                // The attack itself: a client trickling its request.
                std::thread::sleep(pause);
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let (answer, closed_after) = reader.join().expect("reader");
    Outcome {
        sent,
        answer,
        closed_after,
    }
}

/// Runs `attack` on a thread of its own.
fn attack_in_background(
    addr: &str,
    head: String,
    chunk: &'static [u8],
    total: usize,
    every: Option<Duration>,
    within: Duration,
) -> JoinHandle<Outcome> {
    let addr = addr.to_string();
    std::thread::spawn(move || attack(&addr, head.as_bytes(), chunk, total, every, within))
}

/// A request announcing a body of 100 GB, then one of `usize::MAX` bytes
/// eight times over (once per handler thread), to answered and refused
/// routes: each is answered without reading the body and the connection is
/// closed. The server used to drain such a body into a buffer of its full
/// size, which aborted the process or panicked the handler thread.
#[test]
fn a_huge_announced_body_is_never_read_or_buffered() {
    let db = TestDb::new("hostile-length");
    let mut s = db.spawn_serve(&["--no-worker"]);
    let addr = s.api.addr.clone();
    for (path, length, status) in [
        ("/healthz", "100000000000", 200),
        ("/api/worker", "100000000000", 401),
        ("/healthz", "18446744073709551615", 200),
    ] {
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n");
        let o = attack(&addr, head.as_bytes(), b"x", 0, None, WAIT);
        assert_eq!(
            o.status(),
            Some(status),
            "{path} with {length} bytes announced"
        );
        assert_answering(&s, "after a huge body was announced");
        assert_alive(&mut s);
        let text = String::from_utf8_lossy(&o.answer).to_ascii_lowercase();
        assert!(text.contains("connection: close"), "{text}");
        assert!(
            o.closed_after < Duration::from_secs(5),
            "closed after {:?}",
            o.closed_after
        );
    }
    let floods: Vec<_> = (0..10)
        .map(|i| {
            let path = if i % 2 == 0 { "/healthz" } else { "/api/jobs" };
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 18446744073709551615\r\n\r\n"
            );
            attack_in_background(&addr, head, b"x", 0, None, WAIT)
        })
        .collect();
    assert_answering(&s, "during the flood");
    for f in floods {
        let o = f.join().expect("attacker");
        assert!(matches!(o.status(), Some(401 | 405)), "{:?}", o.status());
    }
    assert_alive(&mut s);
    for _ in 0..10 {
        assert_answering(&s, "after every handler thread met a huge body");
    }
    assert!(rss_kb(&s) < RSS_LIMIT_KB, "resident {} kB", rss_kb(&s));
}

/// Sixteen clients send their bodies one byte every 500 ms (inside the
/// read timeout), more than the 8 handler threads: unauthenticated ones
/// announcing 100 kB, authenticated ones 100 kB (over the limit) and 60 kB
/// (under it). `/healthz` and the API stay answered throughout; the first
/// two kinds are refused at once, the last cut off at the request deadline
/// (`--client-timeout 3` here) with 408.
#[test]
fn slow_bodies_hold_no_handler_thread_and_meet_a_deadline() {
    let db = TestDb::new("hostile-slow");
    let s = db.spawn_serve(&["--no-worker", "--client-timeout", "3"]);
    let addr = s.api.addr.clone();
    let bearer = format!("Authorization: Bearer {}\r\n", s.api.token);
    let kinds = [
        ("", 100_000, 401),
        (bearer.as_str(), 100_000, 413),
        (bearer.as_str(), 60_000, 408),
    ];
    let mut slow = Vec::new();
    for (auth, length, expected) in kinds {
        let n = if expected == 408 { 8 } else { 4 };
        for _ in 0..n {
            let head = format!(
                "POST /api/jobs HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {length}\r\n\r\n{{"
            );
            let every = Some(Duration::from_millis(500));
            let within = Duration::from_secs(12);
            let head_len = head.len();
            let attacker = attack_in_background(&addr, head, b" ", length, every, within);
            slow.push((expected, head_len, attacker));
        }
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert_answering(&s, "while slow bodies trickle");
    }
    for (expected, head_len, attacker) in slow {
        let o = attacker.join().expect("attacker");
        assert_eq!(
            o.status(),
            Some(expected),
            "{}",
            String::from_utf8_lossy(&o.answer)
        );
        let body = o.sent - head_len;
        assert!(body < 20, "the server waited for {body} bytes of the body");
        // The deadline (3 s), then the lingering close (2 s at most).
        assert!(
            o.closed_after < Duration::from_secs(8),
            "closed after {:?}",
            o.closed_after
        );
    }
    assert_answering(&s, "after the slow bodies");
}

/// A request head that never ends: one endless header line, endless short
/// headers, an endless request line. Each is answered 431 or 414 (or the
/// connection is cut) long before the client is done sending, and the
/// server's memory stays bounded; it used to buffer the whole head.
#[test]
fn an_endless_request_head_is_refused_before_it_is_buffered() {
    let db = TestDb::new("hostile-head");
    let mut s = db.spawn_serve(&["--no-worker"]);
    let addr = s.api.addr.clone();
    let before = rss_kb(&s);
    const MB: usize = 1024 * 1024;
    static LONG: [u8; 64 * 1024] = [b'a'; 64 * 1024];
    let short: &'static [u8] = "X-A: b\r\n".repeat(8 * 1024).leak().as_bytes();
    // (What the server may read is its limits plus the sockets' buffers.)
    let heads = [
        (
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Long: "),
            &LONG[..],
            160 * MB,
            431,
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n"),
            short,
            32 * MB,
            431,
        ),
        ("GET /".to_string(), &LONG[..], 160 * MB, 414),
    ];
    for (head, chunk, total, expected) in heads {
        let attacker = attack_in_background(&addr, head.clone(), chunk, total, None, WAIT);
        assert_answering(&s, "during an endless head");
        let o = attacker.join().expect("attacker");
        assert!(
            o.sent < 16 * MB,
            "{head:?}: the server read {} bytes",
            o.sent
        );
        if !o.answer.is_empty() {
            assert_eq!(o.status(), Some(expected), "{head:?}");
        }
        assert_alive(&mut s);
        let rss = rss_kb(&s);
        assert!(
            rss < RSS_LIMIT_KB,
            "{head:?}: resident {rss} kB (was {before} kB)"
        );
    }
    assert_answering(&s, "after the endless heads");
}

/// Raises this process's soft limit on open descriptors to `n`.
#[allow(unsafe_code)]
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for the kernel to fill in and read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

/// 600 idle connections, past the cap of 512 open connections: those past
/// it are answered 503 `busy` and closed, the server's threads stay
/// bounded by the cap, and once the connections go it answers again. Each
/// connection used to get a thread of its own, without limit.
#[test]
fn connections_past_the_cap_are_refused_and_threads_stay_bounded() {
    const OPEN: usize = 600;
    raise_nofile(4096);
    let db = TestDb::new("hostile-conns");
    let log = db.dir.join("serve-conns.log");
    let cmd = db.cmd_with_limits(
        "ulimit -n 4096",
        &["serve", "--bind", "127.0.0.1:0", "--no-worker"],
    );
    let s = db.spawn_server(cmd, log);
    let addr = s.api.addr.clone();
    assert_answering(&s, "before");
    let mut held = Vec::new();
    while held.len() < OPEN {
        // A connect can be refused while the accept queue is full.
        if let Ok(c) = TcpStream::connect(&addr) {
            held.push(c);
        }
    }
    // Once the last connection is refused, all before it were accepted.
    let last = held.last_mut().expect("a connection");
    last.set_read_timeout(Some(ANSWER)).expect("read timeout");
    let _ = last.peek(&mut [0u8; 1]);
    let count = threads(&s);
    assert!(
        count < MAX_CONNECTIONS + 40,
        "{count} threads for {OPEN} connections"
    );
    for c in &mut held[OPEN - 50..] {
        c.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(answer.contains("\"busy\""), "{answer}");
    }
    // Still answering, if only to say it is busy.
    assert_eq!(
        status_of(&addr, "/healthz", None),
        Some(503),
        "/healthz at the cap"
    );
    drop(held);
    wait_for(
        "the server to answer after the connections closed",
        WAIT,
        || status_of(&addr, "/healthz", None) == Some(200),
    );
    assert_answering(&s, "after the connections closed");
}

/// One connection pipelines 50,000 `GET /healthz` (2 MB) in one go and
/// never reads an answer. The server reads its next request only once the
/// previous one is answered, so it holds one of them at a time; once its
/// answers fill the socket, the write times out (`--client-timeout 5`
/// here) and the server closes the connection. `/healthz` from other
/// connections is answered throughout and memory stays flat; a client that
/// pipelines and reads still gets every answer. The server used to read and
/// queue every pipelined request at once, and the answers waiting their
/// turn on that connection held every handler thread, then the accept
/// thread.
#[test]
fn pipelined_requests_are_read_one_at_a_time() {
    const REQUESTS: usize = 50_000;
    const GROWTH_LIMIT_KB: u64 = 30 * 1024;
    let db = TestDb::new("hostile-pipeline");
    let mut s = db.spawn_serve(&["--no-worker", "--client-timeout", "5"]);
    let addr = s.api.addr.clone();
    let one = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut reading = TcpStream::connect(&addr).expect("connect");
    reading.set_read_timeout(Some(WAIT)).expect("read timeout");
    let last = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    reading
        .write_all(format!("{one}{one}{last}").as_bytes())
        .expect("pipeline three requests");
    let mut answers = String::new();
    let _ = reading.read_to_string(&mut answers);
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 3, "{answers}");
    assert_answering(&s, "before");
    let before = rss_kb(&s);
    let fds_before = open_fds(&s);
    let burst = one.repeat(REQUESTS);
    let target = addr.clone();
    let attacker = std::thread::spawn(move || {
        let mut c = TcpStream::connect(&target).expect("connect");
        c.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("write timeout");
        // Fails once the server stops reading (or closes); kept open, unread.
        let _ = c.write_all(burst.as_bytes());
        c
    });
    let mut peak = before;
    let start = Instant::now();
    // Through the burst, while the server's answers fill the socket, and
    // while its last write waits out the client timeout.
    while !attacker.is_finished() || start.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            status_of(&addr, "/healthz", None),
            Some(200),
            "/healthz during the pipelined burst ({:?} in)",
            start.elapsed()
        );
        peak = peak.max(rss_kb(&s));
    }
    let held = attacker.join().expect("attacker");
    wait_for(
        "the server to close the connection it could not answer",
        WAIT,
        || open_fds(&s) <= fds_before,
    );
    assert_answering(&s, "after the pipelined burst");
    peak = peak.max(rss_kb(&s));
    assert!(
        peak < before + GROWTH_LIMIT_KB,
        "resident {peak} kB at the peak, {before} kB before"
    );
    drop(held);
    assert_answering(&s, "after the pipelining client closed");
    assert_alive(&mut s);
}
