//! How many requests are answered at once. Each request is answered on
//! the thread that read it from its connection (see [`super::bind`]), so
//! without a bound every open connection could run a handler at once; the
//! gate lets a fixed number through, queues a bounded backlog behind them
//! (503 `busy` past it), holds requests that arrive before the server has
//! started, and at shutdown refuses new ones and waits for those inside.
//! It also hands each request what answers it (the server's context), and
//! lets go of that once closed, so a connection thread that outlives the
//! server holds nothing of it.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Bound but not started: requests wait.
    Starting,
    /// Answering.
    Open,
    /// Stopping: requests already waiting still go through, new ones are
    /// refused.
    Closed,
}

struct State<T> {
    phase: Phase,
    /// What answers, from `open` until `close` is done.
    serving: Option<T>,
    /// Requests answered at once at most (set by `open`).
    limit: usize,
    /// Requests being answered.
    running: usize,
    /// Requests waiting for their turn.
    waiting: usize,
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// More than the backlog wait already.
    Busy,
    /// The server is stopping.
    Closed,
}

/// The admission gate of one server.
pub struct Gate<T> {
    state: Mutex<State<T>>,
    /// Signalled when a request leaves, and when the phase changes.
    changed: Condvar,
    /// Requests waiting at most.
    backlog: usize,
}

/// A request's place inside the gate, given back when dropped.
pub struct Permit<'a, T>(&'a Gate<T>);

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.running -= 1;
        // A wake-up is a system call even when nobody waits: make it only
        // when a request waits for a place or a stop for the last one.
        // (Both wait after checking under this lock, so none is missed.)
        let wanted = st.waiting > 0 || st.phase == Phase::Closed;
        drop(st);
        // All, not one: a stop waits on the same condition as the
        // requests (a rare case; otherwise nobody or few wait).
        if wanted {
            self.0.changed.notify_all();
        }
    }
}

impl<T> Gate<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is counters updated under the lock in one step each; a
        // panic elsewhere leaves them consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: Clone> Gate<T> {
    /// A closed gate with room for `backlog` waiting requests.
    pub fn new(backlog: usize) -> Gate<T> {
        Gate {
            state: Mutex::new(State {
                phase: Phase::Starting,
                serving: None,
                limit: 0,
                running: 0,
                waiting: 0,
            }),
            changed: Condvar::new(),
            backlog,
        }
    }

    /// Lets requests in, `limit` at once, those already waiting first;
    /// each is given a clone of `serving`.
    pub fn open(&self, limit: usize, serving: T) {
        let mut st = self.lock();
        if st.phase == Phase::Starting {
            st.phase = Phase::Open;
            st.limit = limit.max(1);
            st.serving = Some(serving);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Waits for a place; the request is answered while the permit lives.
    pub fn enter(&self) -> Result<(Permit<'_, T>, T), Refused> {
        let mut st = self.lock();
        if st.phase == Phase::Closed {
            return Err(Refused::Closed);
        }
        // Once closed, those already waiting still go through.
        let free = |st: &State<T>| st.phase != Phase::Starting && st.running < st.limit;
        if !free(&st) {
            if st.waiting >= self.backlog {
                return Err(Refused::Busy);
            }
            st.waiting += 1;
            while !free(&st) {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.waiting -= 1;
        }
        let serving = st.serving.clone().ok_or(Refused::Closed)?;
        st.running += 1;
        Ok((Permit(self), serving))
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Refuses new requests, then waits until those waiting and those
    /// inside are answered.
    pub fn close(&self) {
        let mut st = self.lock();
        st.phase = Phase::Closed;
        self.changed.notify_all();
        while st.running > 0 || st.waiting > 0 {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.serving = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(30);

    /// Until one request waits at the gate.
    fn wait_for_waiting<T: Clone>(gate: &Gate<T>) {
        let deadline = std::time::Instant::now() + LONG;
        while gate.waiting() == 0 {
            assert!(std::time::Instant::now() < deadline, "no request waits");
            thread::yield_now();
        }
    }

    #[test]
    fn lets_in_the_limit_and_queues_the_backlog() {
        let gate = Arc::new(Gate::new(1));
        gate.open(2, ());
        let a = gate.enter().expect("first");
        let (_b, ()) = gate.enter().expect("second");
        let (tx, rx) = mpsc::channel();
        let waiting = {
            let gate = gate.clone();
            thread::spawn(move || {
                let p = gate.enter().map(drop);
                tx.send(p).expect("report");
            })
        };
        // The third waits (the backlog has room for one); a fourth is busy.
        wait_for_waiting(&gate);
        assert_eq!(gate.enter().map(drop), Err(Refused::Busy));
        assert!(rx.try_recv().is_err(), "the third waits for a place");
        drop(a);
        assert_eq!(rx.recv_timeout(LONG).expect("third let in"), Ok(()));
        waiting.join().expect("waiter");
    }

    #[test]
    fn holds_requests_until_open_and_refuses_new_ones_once_closed() {
        let gate = Arc::new(Gate::new(8));
        let (tx, rx) = mpsc::channel();
        let early = {
            let gate = gate.clone();
            thread::spawn(move || tx.send(gate.enter().map(|(_, v)| v)).expect("report"))
        };
        wait_for_waiting(&gate);
        assert!(
            rx.try_recv().is_err(),
            "nothing is answered before the server starts"
        );
        gate.open(4, 7);
        assert_eq!(rx.recv_timeout(LONG).expect("let in at start"), Ok(7));
        early.join().expect("early request");
        let inside = gate.enter().expect("open");
        let closing = {
            let gate = gate.clone();
            thread::spawn(move || gate.close())
        };
        while gate.enter().map(drop) != Err(Refused::Closed) {}
        assert!(!closing.is_finished(), "close waits for the request inside");
        drop(inside);
        closing.join().expect("closed");
        assert_eq!(gate.lock().serving, None, "nothing held once closed");
    }
}
