//! Live events and their fan-out: the change watcher publishes each event
//! once, serialized once, and the hub offers it to every subscriber's bounded
//! queue without ever blocking, then wakes the one consumer (the live
//! sockets' writer, `web::live`), which makes its WebSocket frame once for
//! all of them. A subscriber whose queue is full is told to resynchronise
//! (its stale queue is emptied and replaced by one `resync`, followed by
//! the message that overflowed); one that made no progress since its last
//! resync is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::{Value, json};

use crate::job::JobRun;
use crate::query::Stats;

/// Messages a subscriber's queue holds before it counts as lagging.
pub const CLIENT_QUEUE: usize = 256;

/// The `{"type":"resync"}` message.
pub const RESYNC: &str = r#"{"type":"resync"}"#;

/// Something that changed, as the WebSocket clients see it.
#[derive(Debug, Clone)]
pub enum Event {
    /// The worker row changed (state, heartbeat); the value is the
    /// worker status object of `/api/worker`.
    Worker(Value),
    /// A run row changed: its JSON as the API shows it, [`run_json`]
    /// with what is usual for its type.
    Run(Box<Value>),
    /// New statistics.
    Stats(Box<Stats>),
    /// Too much changed at once: clients must refetch.
    Resync,
}

/// A run as the API shows it: the row plus `progressText`.
pub fn run_json(run: &JobRun) -> Value {
    let mut v = serde_json::to_value(run).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("progressText".into(), run.progress_text().into());
    }
    v
}

impl Event {
    /// The JSON text sent to clients.
    pub fn to_text(&self) -> String {
        let v = match self {
            Event::Worker(w) => json!({"type": "worker", "worker": w}),
            Event::Run(r) => json!({"type": "run", "run": r}),
            Event::Stats(s) => json!({"type": "stats", "stats": s}),
            Event::Resync => return RESYNC.to_string(),
        };
        v.to_string()
    }
}

struct Slot {
    mailbox: Arc<Mailbox>,
    delivered: Arc<AtomicU64>,
    /// `delivered` when the client was last told to resync.
    resynced_at: Option<u64>,
}

/// One message as every subscriber gets it: the JSON text, and the bytes
/// the consumer makes of it once (a WebSocket frame), shared by all.
pub struct Published {
    text: Arc<str>,
    encoded: OnceLock<Box<[u8]>>,
}

impl Published {
    fn new(text: Arc<str>) -> Arc<Published> {
        Arc::new(Published {
            text,
            encoded: OnceLock::new(),
        })
    }

    /// The message encoded by `encode`, which runs for the first caller
    /// only: with 100 clients, one encoding instead of 100.
    pub fn encoded(&self, encode: impl FnOnce(&str) -> Vec<u8>) -> &[u8] {
        self.encoded
            .get_or_init(|| encode(&self.text).into_boxed_slice())
    }
}

/// One subscriber's bounded queue, a list under a lock. Nobody waits on
/// it: the hub wakes the one consumer after each publish, and that
/// consumer takes from every queue in turn.
struct Mailbox {
    queue: Mutex<Queue>,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Arc<Published>>,
    /// The hub dropped the subscriber: once empty, `next` says so.
    closed: bool,
}

impl Mailbox {
    fn new(capacity: usize) -> Mailbox {
        Mailbox {
            queue: Mutex::new(Queue::default()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A list and a flag: consistent whatever a panicking holder did.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `m`; false (and nothing queued) when the queue is full.
    fn offer(&self, m: Arc<Published>) -> bool {
        let mut q = self.lock();
        if q.items.len() >= self.capacity {
            return false;
        }
        q.items.push_back(m);
        true
    }

    /// Replaces everything queued by `msgs`.
    fn replace(&self, msgs: [Arc<Published>; 2]) {
        let mut q = self.lock();
        q.items.clear();
        q.items.extend(msgs);
    }

    fn close(&self) {
        self.lock().closed = true;
    }

    fn next(&self) -> Next {
        let mut q = self.lock();
        match q.items.pop_front() {
            Some(m) => Next::Message(m),
            None if q.closed => Next::Dropped,
            None => Next::Idle,
        }
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    slots: HashMap<u64, Slot>,
}

/// The fan-out hub.
pub struct Hub {
    inner: Mutex<Inner>,
    max_clients: usize,
    capacity: usize,
    /// Tells the consumer that queues changed (set once, by the consumer).
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
    closed: AtomicBool,
}

/// One subscriber's end of its queue; unsubscribes on drop.
pub struct Subscription {
    id: u64,
    hub: Arc<Hub>,
    mailbox: Arc<Mailbox>,
    delivered: Arc<AtomicU64>,
}

/// What taking from a subscription gave.
pub enum Next {
    Message(Arc<Published>),
    /// Nothing queued.
    Idle,
    /// The hub dropped this subscriber (or shut down).
    Dropped,
}

impl Hub {
    /// A hub for at most `max_clients` subscribers with queues of `capacity`.
    pub fn new(max_clients: usize, capacity: usize) -> Arc<Hub> {
        Arc::new(Hub {
            inner: Mutex::new(Inner::default()),
            max_clients,
            capacity: capacity.max(2),
            waker: OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Sets what the hub calls after each publish and at close: the
    /// consumer's wake-up. Only the first call counts.
    pub fn on_publish(&self, wake: impl Fn() + Send + Sync + 'static) {
        let _ = self.waker.set(Box::new(wake));
    }

    fn wake(&self) {
        if let Some(w) = self.waker.get() {
            w();
        }
    }

    /// Whether [`Hub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscriber, or None when the hub is full or closed.
    pub fn subscribe(self: &Arc<Self>) -> Option<Subscription> {
        let mut inner = self.lock();
        if inner.slots.len() >= self.max_clients || self.is_closed() {
            return None;
        }
        let mailbox = Arc::new(Mailbox::new(self.capacity));
        let delivered = Arc::new(AtomicU64::new(0));
        inner.next_id += 1;
        let id = inner.next_id;
        inner.slots.insert(
            id,
            Slot {
                mailbox: mailbox.clone(),
                delivered: delivered.clone(),
                resynced_at: None,
            },
        );
        Some(Subscription {
            id,
            hub: self.clone(),
            mailbox,
            delivered,
        })
    }

    /// Number of subscribers (`jobmgr_websocket_clients` reports it).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether there are no subscribers (the change watcher then need not
    /// hurry).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers `event` to every subscriber without blocking.
    pub fn publish(&self, event: &Event) {
        self.publish_text(event.to_text().into());
    }

    /// Offers an already serialized message to every subscriber.
    pub fn publish_text(&self, text: Arc<str>) {
        let text = Published::new(text);
        let mut inner = self.lock();
        let mut gone = Vec::new();
        for (id, slot) in inner.slots.iter_mut() {
            if slot.mailbox.offer(text.clone()) {
                continue;
            }
            let delivered = slot.delivered.load(Ordering::Relaxed);
            if slot.resynced_at == Some(delivered) {
                log::warn!("dropping live client {id}: it has stopped reading");
                gone.push(*id);
                continue;
            }
            // The resync, then this newest message: it is still news.
            slot.mailbox
                .replace([Published::new(RESYNC.into()), text.clone()]);
            slot.resynced_at = Some(delivered);
            log::info!("live client {id} lagged; told to resync");
        }
        for id in gone {
            if let Some(slot) = inner.slots.remove(&id) {
                slot.mailbox.close();
            }
        }
        drop(inner);
        self.wake();
    }

    /// Drops every subscriber and refuses new ones (shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for (_, slot) in self.lock().slots.drain() {
            slot.mailbox.close();
        }
        self.wake();
    }
}

impl Subscription {
    /// The next queued message, without waiting.
    pub fn next(&self) -> Next {
        self.mailbox.next()
    }

    /// Records that a message reached the client's socket.
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().slots.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: i64) -> Arc<str> {
        format!("{{\"n\":{n}}}").into()
    }

    fn take(sub: &Subscription) -> Option<String> {
        match sub.next() {
            Next::Message(m) => Some(m.text.to_string()),
            _ => None,
        }
    }

    #[test]
    fn a_lagging_client_is_resynced_then_dropped_while_others_keep_up() {
        let hub = Hub::new(4, 3);
        let slow = hub.subscribe().expect("slot");
        let fast = hub.subscribe().expect("slot");
        for n in 0..3 {
            hub.publish_text(text(n));
            assert_eq!(take(&fast), Some(format!("{{\"n\":{n}}}")));
            fast.delivered();
        }
        hub.publish_text(text(3));
        assert_eq!(take(&slow).as_deref(), Some(RESYNC));
        assert_eq!(
            take(&slow).as_deref(),
            Some("{\"n\":3}"),
            "the stale queue was emptied; the newest message follows the resync"
        );
        assert_eq!(take(&slow), None);
        assert_eq!(take(&fast).as_deref(), Some("{\"n\":3}"));
        // The slow client delivers nothing more: the next overflow drops it.
        for n in 4..8 {
            hub.publish_text(text(n));
        }
        assert_eq!(hub.len(), 1);
        while take(&slow).is_some() {}
        assert!(matches!(slow.next(), Next::Dropped));
        drop(fast);
        assert!(hub.is_empty());
    }

    #[test]
    fn a_closed_hub_delivers_what_was_queued_then_drops_its_clients() {
        let hub = Hub::new(4, 4);
        let sub = hub.subscribe().expect("slot");
        assert!(matches!(sub.next(), Next::Idle));
        hub.publish_text(text(1));
        hub.close();
        assert_eq!(take(&sub).as_deref(), Some("{\"n\":1}"));
        assert!(matches!(sub.next(), Next::Dropped));
        assert!(hub.subscribe().is_none(), "a closed hub takes no one new");
    }

    #[test]
    fn a_message_is_encoded_once_for_every_subscriber_and_wakes_the_consumer() {
        let hub = Hub::new(4, 4);
        let wakes = Arc::new(AtomicU64::new(0));
        let counted = wakes.clone();
        hub.on_publish(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let subs: Vec<Subscription> = (0..3).map(|_| hub.subscribe().expect("slot")).collect();
        hub.publish_text(text(1));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let mut encodings = 0;
        for sub in &subs {
            let Next::Message(m) = sub.next() else {
                panic!("the message was queued for every subscriber");
            };
            let bytes = m.encoded(|t| {
                encodings += 1;
                t.as_bytes().to_vec()
            });
            assert_eq!(bytes, b"{\"n\":1}");
        }
        assert_eq!(encodings, 1, "one encoding shared by all");
        hub.close();
        assert_eq!(wakes.load(Ordering::SeqCst), 2, "close wakes the consumer");
    }

    #[test]
    fn the_hub_refuses_clients_beyond_its_cap() {
        let hub = Hub::new(1, 4);
        let _a = hub.subscribe().expect("first");
        assert!(hub.subscribe().is_none());
    }
}
