//! Host name lookups with a deadline. `ToSocketAddrs` asks the system's
//! resolver, which can block for as long as a dead DNS server makes it;
//! the lookup runs on a short-lived helper thread and the caller waits
//! for it at most [`TIMEOUT`]. A lookup that overstays is left to finish
//! on its own, and until it has, the next lookup fails at once instead of
//! starting another thread: at most one helper thread is ever alive, so
//! a resolver that never answers costs one parked thread, not one per
//! delivery attempt. An IP address is used as it is, without a thread.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How long one lookup may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The process's one lookup slot.
static SHARED: LazyLock<Lookups> = LazyLock::new(|| Lookups::new(TIMEOUT));

/// The addresses of `host` (brackets of an IPv6 literal allowed) at
/// `port`, found within [`TIMEOUT`].
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    SHARED.resolve(host, port)
}

/// A lookup slot: at most one helper thread at a time.
pub struct Lookups {
    busy: Arc<AtomicBool>,
    timeout: Duration,
}

impl Lookups {
    /// A slot whose lookups may take `timeout`.
    pub fn new(timeout: Duration) -> Lookups {
        Lookups {
            busy: Arc::new(AtomicBool::new(false)),
            timeout,
        }
    }

    /// Looks `host` up with the system's resolver.
    pub fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let name = bare.to_string();
        self.run(host, move || {
            (name.as_str(), port).to_socket_addrs().map(|a| a.collect())
        })
    }

    /// Runs `lookup` on a helper thread and waits for it until the
    /// deadline; `host` is for messages.
    fn run<F>(&self, host: &str, lookup: F) -> Result<Vec<SocketAddr>, String>
    where
        F: FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
    {
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(format!(
                "resolve {host}: an earlier lookup has still not finished (the DNS \
                 server is not answering)"
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let busy = self.busy.clone();
        let spawned = std::thread::Builder::new()
            .name("notify-resolve".into())
            .spawn(move || {
                let result = lookup();
                // Freed before the answer is sent, so a caller that got the
                // answer always finds the slot free for its next lookup.
                busy.store(false, Ordering::Release);
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            self.busy.store(false, Ordering::Release);
            return Err(format!("resolve {host}: start a lookup thread: {e}"));
        }
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(addrs)) if addrs.is_empty() => Err(format!("resolve {host}: no address")),
            Ok(Ok(addrs)) => Ok(addrs),
            Ok(Err(e)) => Err(format!("resolve {host}: {e}")),
            Err(_) => Err(format!(
                "resolve {host}: no answer within {} s",
                self.timeout.as_secs_f64()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::Receiver;

    fn addr() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 80))
    }

    /// A lookup that answers once `release` says so (or is dropped).
    fn held(release: Receiver<()>) -> impl FnOnce() -> io::Result<Vec<SocketAddr>> + Send {
        move || {
            let _ = release.recv();
            Ok(vec![addr()])
        }
    }

    #[test]
    fn ip_addresses_need_no_lookup() {
        let l = Lookups::new(Duration::from_secs(1));
        assert_eq!(
            l.resolve("127.0.0.1", 9),
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 9))])
        );
        assert_eq!(
            l.resolve("[::1]", 9).map(|a| a[0].is_ipv6()),
            Ok(true),
            "brackets are taken off"
        );
    }

    #[test]
    fn an_answer_in_time_is_returned_and_frees_the_slot() {
        let l = Lookups::new(Duration::from_secs(30));
        assert_eq!(l.run("a.example", || Ok(vec![addr()])), Ok(vec![addr()]));
        assert_eq!(l.run("b.example", || Ok(vec![addr()])), Ok(vec![addr()]));
        let e = l.run("c.example", || Err(io::Error::other("no such host")));
        assert_eq!(e, Err("resolve c.example: no such host".into()));
        assert_eq!(
            l.run("d.example", || Ok(vec![])),
            Err("resolve d.example: no address".into())
        );
    }

    #[test]
    fn a_lookup_past_its_deadline_fails_and_blocks_no_second_thread() {
        let l = Lookups::new(Duration::from_millis(50));
        let (release, wait) = crossbeam_channel::bounded::<()>(0);
        let started = std::time::Instant::now();
        assert_eq!(
            l.run("dead.example", held(wait)),
            Err("resolve dead.example: no answer within 0.05 s".into())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // The stuck lookup still holds the slot: no second thread.
        let again = l.run("next.example", || Ok(vec![addr()]));
        assert!(
            again
                .as_ref()
                .is_err_and(|e| e.contains("an earlier lookup has still not finished")),
            "{again:?}"
        );
        // Once it ends, lookups work again.
        drop(release);
        let mut ok = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ok && std::time::Instant::now() < deadline {
            ok = l.run("next.example", || Ok(vec![addr()])).is_ok();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(ok, "the slot was not freed after the stuck lookup ended");
    }
}
