//! A subscriber's bounded queue of encoded frames, each with its event id: what `publish`
//! pushes into and the subscription's stream reads from. The id lets a subscription that
//! caught up from elsewhere (the Redis stream) drop what it already sent.
//!
//! Guarantees: a push never waits (a full queue is refused at once, and the caller cuts that
//! subscriber as `slow`); a wake-up is never lost; once closed, the reader still drains what
//! was queued before it ends.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::sync::lock;

/// A subscriber's bounded queue of encoded frames. Lighter than a channel (an idle
/// subscriber holds no buffer at all), and publishing into it never waits.
#[derive(Debug)]
pub(super) struct Queue {
    items: Mutex<VecDeque<(Option<u64>, Bytes)>>,
    capacity: usize,
    ready: Notify,
    /// Set when the publishing side lets go: the reader drains what is left, then ends.
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
pub(super) struct QueueFull;

impl Queue {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn push(&self, id: Option<u64>, frame: Bytes) -> Result<(), QueueFull> {
        {
            let mut items = lock(&self.items);
            if items.len() >= self.capacity {
                return Err(QueueFull);
            }
            items.push_back((id, frame));
        }
        // Stores a permit when the reader is not waiting yet, so no wake-up is lost.
        self.ready.notify_one();
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.items).len()
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ready.notify_one();
    }

    /// The next frame and its event id (`None` for a frame that is no event of the channel's
    /// numbering, such as a `reset` after its ids restarted); `None` once closed and drained.
    pub(super) async fn recv(&self) -> Option<(Option<u64>, Bytes)> {
        loop {
            if let Some(frame) = lock(&self.items).pop_front() {
                return Some(frame);
            }
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            self.ready.notified().await;
        }
    }
}
