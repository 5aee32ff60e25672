use std::io::Result as IoResult;
use std::io::{Read, Write};

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use std::mem;

/// jobmgr: a one-time hand-over of a value from one holder to the next,
/// in place of the `mpsc` channel the original made for each request's
/// reader and writer. A channel cost two allocations (its counter, and a
/// block of 31 slots on the first send) and their frees per request;
/// this is one small allocation, and it wakes the receiver (a system
/// call) only when the receiver is waiting. Like the channel, a receiver
/// whose sender is dropped without sending learns it (`recv` gives `Err`).
struct Handoff<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

struct Slot<T> {
    value: Value<T>,
    /// The receiver is blocked in `recv`.
    waiting: bool,
}

enum Value<T> {
    Empty,
    Sent(T),
    /// The sender was dropped without sending (or the value was taken).
    Gone,
}

struct Sender<T> {
    handoff: Arc<Handoff<T>>,
    sent: bool,
}

struct Receiver<T> {
    handoff: Arc<Handoff<T>>,
}

/// The two ends of one hand-over.
fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let handoff = Arc::new(Handoff {
        slot: Mutex::new(Slot {
            value: Value::Empty,
            waiting: false,
        }),
        ready: Condvar::new(),
    });
    (
        Sender {
            handoff: handoff.clone(),
            sent: false,
        },
        Receiver { handoff },
    )
}

impl<T> Handoff<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // A value and a flag, each set in one step: consistent whatever a
        // panicking holder did.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, value: Value<T>) {
        let mut slot = self.lock();
        slot.value = value;
        let waiting = slot.waiting;
        drop(slot);
        if waiting {
            self.ready.notify_one();
        }
    }
}

impl<T> Sender<T> {
    /// Hands `value` over (the first call only). Never blocks; like a
    /// channel's `send`, the value is simply dropped with the hand-over if
    /// nobody receives it.
    fn send(&mut self, value: T) -> Result<(), ()> {
        if self.sent {
            return Err(());
        }
        self.sent = true;
        self.handoff.put(Value::Sent(value));
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.handoff.put(Value::Gone);
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the value; `Err` when the sender was dropped without one.
    fn recv(&self) -> Result<T, ()> {
        let mut slot = self.handoff.lock();
        loop {
            match mem::replace(&mut slot.value, Value::Gone) {
                Value::Sent(value) => return Ok(value),
                Value::Gone => return Err(()),
                Value::Empty => {
                    slot.value = Value::Empty;
                    slot.waiting = true;
                    slot = self
                        .handoff
                        .ready
                        .wait(slot)
                        .unwrap_or_else(|e| e.into_inner());
                    slot.waiting = false;
                }
            }
        }
    }
}

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    inner: SequentialReaderBuilderInner<R>,
}

enum SequentialReaderBuilderInner<R>
where
    R: Read + Send,
{
    First(R),
    NotFirst(Receiver<R>),
}

pub struct SequentialReader<R>
where
    R: Read + Send,
{
    inner: SequentialReaderInner<R>,
    next: Sender<R>,
}

enum SequentialReaderInner<R>
where
    R: Read + Send,
{
    MyTurn(R),
    Waiting(Receiver<R>),
    Empty,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    writer: Arc<Mutex<W>>,
    next_trigger: Option<Receiver<()>>,
}

pub struct SequentialWriter<W>
where
    W: Write + Send,
{
    trigger: Option<Receiver<()>>,
    writer: Arc<Mutex<W>>,
    on_finish: Sender<()>,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            inner: SequentialReaderBuilderInner::First(reader),
        }
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// jobmgr: blocks until the readers before this one are dropped, then
    /// gives access to the underlying reader.
    pub fn wait_turn(&mut self) -> &mut R {
        if let SequentialReaderInner::Waiting(ref mut recv) = self.inner {
            let reader = recv.recv().unwrap();
            self.inner = SequentialReaderInner::MyTurn(reader);
        }
        match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => reader,
            _ => unreachable!(),
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            writer: Arc::new(Mutex::new(writer)),
            next_trigger: None,
        }
    }
}

impl<R: Read + Send> Iterator for SequentialReaderBuilder<R> {
    type Item = SequentialReader<R>;

    fn next(&mut self) -> Option<SequentialReader<R>> {
        let (tx, rx) = channel();

        let inner = mem::replace(&mut self.inner, SequentialReaderBuilderInner::NotFirst(rx));

        match inner {
            SequentialReaderBuilderInner::First(reader) => Some(SequentialReader {
                inner: SequentialReaderInner::MyTurn(reader),
                next: tx,
            }),

            SequentialReaderBuilderInner::NotFirst(previous) => Some(SequentialReader {
                inner: SequentialReaderInner::Waiting(previous),
                next: tx,
            }),
        }
    }
}

impl<W: Write + Send> Iterator for SequentialWriterBuilder<W> {
    type Item = SequentialWriter<W>;
    fn next(&mut self) -> Option<SequentialWriter<W>> {
        let (tx, rx) = channel();
        let mut next_next_trigger = Some(rx);
        ::std::mem::swap(&mut next_next_trigger, &mut self.next_trigger);

        Some(SequentialWriter {
            trigger: next_next_trigger,
            writer: self.writer.clone(),
            on_finish: tx,
        })
    }
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let mut reader = match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => return reader.read(buf),
            SequentialReaderInner::Waiting(ref mut recv) => recv.recv().unwrap(),
            SequentialReaderInner::Empty => unreachable!(),
        };

        let result = reader.read(buf);
        self.inner = SequentialReaderInner::MyTurn(reader);
        result
    }
}

impl<W: Write + Send> Write for SequentialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        if let Some(v) = self.trigger.as_mut() {
            v.recv().unwrap()
        }
        self.trigger = None;

        self.writer.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        if let Some(v) = self.trigger.as_mut() {
            v.recv().unwrap()
        }
        self.trigger = None;

        self.writer.lock().unwrap().flush()
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        let inner = mem::replace(&mut self.inner, SequentialReaderInner::Empty);

        match inner {
            SequentialReaderInner::MyTurn(reader) => {
                self.next.send(reader).ok();
            }
            SequentialReaderInner::Waiting(recv) => {
                let reader = recv.recv().unwrap();
                self.next.send(reader).ok();
            }
            SequentialReaderInner::Empty => (),
        }
    }
}

impl<W> Drop for SequentialWriter<W>
where
    W: Write + Send,
{
    fn drop(&mut self) {
        self.on_finish.send(()).ok();
    }
}
