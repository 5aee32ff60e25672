//! The live sockets' writers: a few threads (one per core, at most
//! [`MAX_WRITERS`]) write the hub's messages to the `/ws` clients, each to
//! its share of them. Each message's WebSocket frame is made once and the
//! same bytes go to every socket, written non-blocking: a client whose
//! socket takes nothing more keeps its unsent bytes here and its backlog in
//! its hub queue, which overflows into a resync and then a drop, so it
//! never holds up the others; one that takes nothing for the client
//! timeout is dropped too.
//!
//! A thread per socket meant one thread wake-up per client and change:
//! with 100 clients on 2 cores, waking them took longer than the rest of
//! the way from the commit to the page. One thread for all of them wrote
//! the sockets one after the other, and each loopback write runs the
//! receiver's side of TCP too, so the median client waited for half of
//! the others' writes. A writer per core shares those writes out; a writer
//! without clients is not woken by a publish.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use tiny_http::ReadWrite;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::error::{Error, Result};
use crate::events::{Hub, Next, RESYNC, Subscription};

/// A ping goes out after this long without a write, to notice dead peers.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Bytes taken from a client's hub queue ahead of what its socket took:
/// the rest waits in the queue, where an overflow turns into a resync.
const AHEAD: usize = 64 * 1024;

/// Writer threads at most: past the cores, more threads only take turns.
const MAX_WRITERS: usize = 4;

/// The writer threads and the way to hand them new clients.
pub struct Live {
    writers: Vec<Writer>,
    /// The writer the next client goes to (round robin).
    next: AtomicUsize,
}

/// One writer thread: its share of the clients and its wake-up.
struct Writer {
    add: Sender<Client>,
    waker: Arc<Waker>,
    /// The clients it writes, as it last counted them (a publish wakes
    /// only writers with some).
    clients: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A live client ready to be written: its subscription, its socket, and
/// the first bytes it gets (the snapshot).
pub struct Client {
    sub: Subscription,
    /// tiny_http's end of the upgraded connection: kept until the client
    /// goes, since dropping it closes the connection and frees its place.
    _stream: Box<dyn ReadWrite + Send>,
    /// The same socket, duplicated and non-blocking, written here.
    socket: TcpStream,
    out: Vec<u8>,
    sent: usize,
    /// Where each hub message ends in `out`: once written past, it counts
    /// as delivered (what the hub's resync rule goes by).
    ends: VecDeque<usize>,
    /// The last write that made progress, or when bytes were queued to an
    /// empty buffer: pings and the stuck-client timeout count from here.
    active_at: Instant,
    closing: bool,
    gone: bool,
}

/// Wakes the writer's `poll`: one byte on a socket pair. A full pair
/// already holds a wake-up, so a failed write is fine.
struct Waker(UnixStream);

impl Waker {
    fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

/// Duplicates the upgraded connection's socket, so it can be written from
/// the writer thread without tiny_http's buffered, blocking stream.
#[allow(unsafe_code)]
pub fn duplicate_socket(fd: RawFd) -> std::io::Result<TcpStream> {
    // SAFETY: `fd` is the socket of the request being upgraded, open for as
    // long as that request (and then its upgraded stream) lives; the caller
    // holds it. The descriptor is only borrowed to duplicate it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(TcpStream::from(fd.try_clone_to_owned()?))
}

/// A WebSocket frame, unmasked (server to client).
fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let mut out = Vec::with_capacity(header.len(len) + payload.len());
    // Writing into a Vec cannot fail.
    let _ = header.format(len, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A text frame holding `text`.
pub fn text_frame(text: &str) -> Vec<u8> {
    frame(OpCode::Data(Data::Text), text.as_bytes())
}

impl Client {
    /// A client whose socket is `socket` (non-blocking from now on), which
    /// gets `first` before anything from `sub`.
    pub fn new(
        sub: Subscription,
        stream: Box<dyn ReadWrite + Send>,
        socket: TcpStream,
        first: &str,
    ) -> std::io::Result<Client> {
        socket.set_nonblocking(true)?;
        // Each write is a whole message someone waits for: Nagle's rule
        // would hold one written while the last is unacknowledged (a run
        // event right after a stats event) until the client's delayed ACK.
        socket.set_nodelay(true)?;
        Ok(Client {
            sub,
            _stream: stream,
            socket,
            out: text_frame(first),
            sent: 0,
            ends: VecDeque::new(),
            active_at: Instant::now(),
            closing: false,
            gone: false,
        })
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    fn queue(&mut self, bytes: &[u8]) {
        if self.unsent() == 0 {
            self.active_at = Instant::now();
        }
        self.out.extend_from_slice(bytes);
    }

    /// Writes what the hub queued for this client, [`AHEAD`] bytes at a
    /// time, and a ping when one is due, until the socket takes no more or
    /// nothing is left. Whatever stays queued waits for the socket's
    /// POLLOUT (or overflows into a resync).
    fn pump(&mut self, now: Instant, timeout: Duration) {
        loop {
            let more = self.take();
            if self.unsent() == 0 && now.duration_since(self.active_at) >= PING_EVERY {
                self.queue(&frame(OpCode::Control(Control::Ping), &[]));
            }
            self.write(now);
            if self.gone || self.unsent() > 0 || !more {
                break;
            }
        }
        if self.unsent() > 0 && now.duration_since(self.active_at) >= timeout {
            log::info!("dropping a live client: it took nothing for {timeout:?}");
            self.gone = true;
        }
    }

    /// Moves queued messages into `out` up to [`AHEAD`] unsent bytes; true
    /// when it stopped at that bound (more may be queued).
    fn take(&mut self) -> bool {
        if self.sent > 0 {
            self.out.drain(..self.sent);
            for end in self.ends.iter_mut() {
                *end -= self.sent;
            }
            self.sent = 0;
        }
        while !self.closing {
            if self.unsent() >= AHEAD {
                return true;
            }
            match self.sub.next() {
                Next::Message(m) => {
                    self.queue(m.encoded(text_frame));
                    self.ends.push_back(self.out.len());
                }
                Next::Idle => break,
                Next::Dropped => {
                    self.queue(&text_frame(RESYNC));
                    self.queue(&frame(OpCode::Control(Control::Close), &[]));
                    self.closing = true;
                }
            }
        }
        false
    }

    /// Writes `out` until the socket would block; counts each hub message
    /// written whole as delivered.
    fn write(&mut self, now: Instant) {
        while self.unsent() > 0 {
            match self.socket.write(&self.out[self.sent..]) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.sent += n;
                    self.active_at = now;
                    while self.ends.front().is_some_and(|e| *e <= self.sent) {
                        self.ends.pop_front();
                        self.sub.delivered();
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    log::debug!("live client: write failed: {e}");
                    self.gone = true;
                }
            }
            break;
        }
        if self.unsent() == 0 {
            self.out.clear();
            self.sent = 0;
            self.gone |= self.closing;
        }
    }

    /// When this client next needs a look without a wake-up: its ping, or
    /// the end of its time to take what is pending.
    fn due(&self, timeout: Duration) -> Instant {
        self.active_at
            + if self.unsent() > 0 {
                timeout
            } else {
                PING_EVERY
            }
    }
}

impl Live {
    /// Starts the writers for `hub`'s subscribers, one per core up to
    /// [`MAX_WRITERS`]; a client that takes no byte for `timeout` while
    /// some are pending is dropped.
    pub fn start(hub: Arc<Hub>, timeout: Duration) -> Result<Live> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let writers = (0..cores.clamp(1, MAX_WRITERS))
            .map(|i| Writer::start(hub.clone(), timeout, i))
            .collect::<Result<Vec<_>>>()?;
        let wakes: Vec<_> = writers
            .iter()
            .map(|w| (w.waker.clone(), w.clients.clone()))
            .collect();
        // Weak: the hub keeps this closure, which must not keep the hub.
        let closing = Arc::downgrade(&hub);
        hub.on_publish(move || {
            // At close every writer is woken, to send its clients the
            // resync and close and to end.
            let all = closing.upgrade().is_none_or(|h| h.is_closed());
            for (waker, clients) in &wakes {
                if all || clients.load(Ordering::SeqCst) > 0 {
                    waker.wake();
                }
            }
        });
        Ok(Live {
            writers,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands `client` to the next writer.
    pub fn add(&self, client: Client) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.writers.len();
        let writer = &self.writers[i];
        if writer.add.send(client).is_ok() {
            writer.waker.wake();
        }
    }

    /// Waits for the writers to end: call it once the hub is closed (their
    /// clients then get a resync and a close, as far as their sockets
    /// take them at once).
    pub fn join(&self) {
        for w in &self.writers {
            let thread = w.thread.lock().map(|mut t| t.take());
            if let Ok(Some(t)) = thread {
                let _ = t.join();
            }
        }
    }
}

impl Writer {
    fn start(hub: Arc<Hub>, timeout: Duration, i: usize) -> Result<Writer> {
        let io = || Error::io("start the live sockets' writer", "ws");
        let (tx, rx) = UnixStream::pair().map_err(io())?;
        tx.set_nonblocking(true).map_err(io())?;
        rx.set_nonblocking(true).map_err(io())?;
        let (add, added) = unbounded();
        let clients = Arc::new(AtomicUsize::new(0));
        let counted = clients.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ws-live-{i}"))
            .spawn(move || run(&hub, &added, rx, &counted, timeout))
            .map_err(io())?;
        Ok(Writer {
            add,
            waker: Arc::new(Waker(tx)),
            clients,
            thread: Mutex::new(Some(thread)),
        })
    }
}

fn run(
    hub: &Hub,
    added: &Receiver<Client>,
    woken: UnixStream,
    count: &AtomicUsize,
    timeout: Duration,
) {
    let mut clients: Vec<Client> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        clients.extend(added.try_iter());
        // Counted before the pump below: a message published before this
        // store, when the count said nobody was here, is taken by it.
        count.store(clients.len(), Ordering::SeqCst);
        let closed = hub.is_closed();
        let now = Instant::now();
        for c in clients.iter_mut() {
            c.pump(now, timeout);
        }
        clients.retain(|c| !c.gone);
        if closed {
            // One last non-blocking pass was made above: a client that
            // has not taken its resync and close by now is cut off.
            return;
        }
        fds.clear();
        fds.push(pollfd(woken.as_raw_fd(), libc::POLLIN));
        for c in &clients {
            let out = if c.unsent() > 0 { libc::POLLOUT } else { 0 };
            fds.push(pollfd(c.socket.as_raw_fd(), libc::POLLRDHUP | out));
        }
        let wait = clients
            .iter()
            .map(|c| c.due(timeout))
            .min()
            .map(|due| due.saturating_duration_since(Instant::now()));
        poll(&mut fds, wait);
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!((&woken).read(&mut buf), Ok(n) if n > 0) {}
        }
        for (c, fd) in clients.iter_mut().zip(&fds[1..]) {
            // The peer closed its end or the socket failed: nobody reads.
            if fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
            {
                c.gone = true;
            }
        }
        clients.retain(|c| !c.gone);
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `wait` passes (None: no limit).
#[allow(unsafe_code)]
fn poll(fds: &mut [libc::pollfd], wait: Option<Duration>) {
    // Rounded up, so a due time is not polled for again and again early.
    let ms = wait.map_or(-1, |w| {
        w.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
    });
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()`
    // pollfd structs for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        // EINTR, or no memory: the loop looks at everything and polls again.
        for fd in fds.iter_mut() {
            fd.revents = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unmasked_with_the_right_length_form() {
        assert_eq!(text_frame("hi"), [0x81, 2, b'h', b'i']);
        let long = "x".repeat(300);
        let f = text_frame(&long);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        assert_eq!(f.len(), 304);
        assert_eq!(frame(OpCode::Control(Control::Ping), &[]), [0x89, 0]);
        assert_eq!(frame(OpCode::Control(Control::Close), &[]), [0x88, 0]);
    }
}
