//! One channel: its numbering, its replay ring and its subscribers, all behind one lock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::time::Instant;

use super::SubscriberMeta;
use super::queue::Queue;
use super::subscription::EndSignal;

#[derive(Debug)]
pub(super) struct Channel {
    pub(super) state: Mutex<ChannelState>,
    pub(super) sent: Arc<AtomicU64>,
}

#[derive(Debug)]
pub(super) struct ChannelState {
    pub(super) last_id: u64,
    pub(super) ring: VecDeque<(u64, Bytes)>,
    /// By subscriber id: leaving is O(1) even when a topic has 100k subscribers.
    pub(super) subscribers: HashMap<u64, Subscriber>,
    pub(super) next_subscriber: u64,
    pub(super) idle_since: Option<Instant>,
    pub(super) dropped: u64,
    pub(super) reconnects: u64,
    pub(super) finished: bool,
}

#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) queue: Arc<Queue>,
    pub(super) end: Arc<EndSignal>,
    pub(super) meta: SubscriberMeta,
}

/// The publishing side's handle going away closes the queue, as dropping a sender would.
impl Drop for Subscriber {
    fn drop(&mut self) {
        self.queue.close();
    }
}
