//! Unit tests only: a clock for one thread, so that a test of code that asks
//! the process clock ([`super::now`]) can run it on a [`super::ManualClock`]
//! while the other tests, on other threads, keep the system clock.

use std::cell::RefCell;

use super::Clock;

thread_local! {
    static CLOCK: RefCell<Option<Clock>> = const { RefCell::new(None) };
}

/// Until dropped, this thread's [`super::now`] uses the clock given to [`use_on_this_thread`].
#[must_use = "the thread clock ends when this is dropped"]
pub struct ThreadClock(Option<Clock>);

/// Runs this thread on `clock` (threads it starts keep the process clock).
pub fn use_on_this_thread(clock: Clock) -> ThreadClock {
    ThreadClock(CLOCK.with(|c| c.replace(Some(clock))))
}

impl Drop for ThreadClock {
    fn drop(&mut self) {
        let previous = self.0.take();
        CLOCK.with(|c| *c.borrow_mut() = previous);
    }
}

/// This thread's clock, if a test set one.
pub(super) fn get() -> Option<Clock> {
    CLOCK.with(|c| c.borrow().clone())
}
