//! One channel: its numbering, its replay ring and its subscribers, behind the one lock that
//! [`Fanout`](super::Fanout) takes for every operation on it.
//!
//! Every method here runs with that lock held, so a publish, a subscribe (its replay and its
//! registration) and a close never interleave. None of them waits: a full queue is refused
//! at once and its subscriber cut as `slow`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use bytes::Bytes;
use tokio::time::Instant;

use super::queue::{Queue, QueueFull};
use super::{ChannelInfo, Exclusive, Limits, Mark, SubscribeError, SubscriberInfo, SubscriberMeta};
use crate::sse::{CloseReason, EventName, Frame};

/// Told a channel's key when its last subscriber left (see [`super::Fanout::on_idle`]).
#[derive(Clone)]
pub(crate) struct IdleHook(pub(super) Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for IdleHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdleHook")
    }
}

#[derive(Debug)]
pub(super) struct Channel {
    pub(super) state: Mutex<ChannelState>,
    pub(super) sent: Arc<AtomicU64>,
    /// Only with an idle hook: the key it is told.
    pub(super) idle: Option<(String, IdleHook)>,
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
    /// Which numbering the ids belong to, when they come from Redis: a new epoch means
    /// they started over. `None` for a channel that numbers its own events.
    pub(super) epoch: Option<String>,
}

/// One subscriber, as its channel and its subscription share it: a single allocation, so
/// the channel's map holds one pointer per subscriber.
#[derive(Debug)]
pub(super) struct Member {
    /// Its frames, and how it is told to stop.
    pub(super) queue: Queue,
    pub(super) meta: SubscriberMeta,
}

/// The channel's handle on a subscriber.
#[derive(Debug)]
pub(super) struct Subscriber(Arc<Member>);

impl std::ops::Deref for Subscriber {
    type Target = Member;

    fn deref(&self) -> &Member {
        &self.0
    }
}

/// The publishing side's handle going away closes the queue, as dropping a sender would.
impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.queue.close();
    }
}

/// An event as subscribers read it: `id:`, `event:` when named, `data:`.
pub(crate) fn encode(id: u64, name: Option<&EventName>, data: &str) -> Bytes {
    let mut frame = Frame::new().id(id);
    if let Some(name) = name {
        frame = frame.event(name);
    }
    frame.data(data).finish()
}

/// An event [`encode`] wrote, split back into its name (when it has one) and its `data:`
/// lines with the blank line that ends it: what a stream of many topics copies unchanged.
pub(crate) fn split_event(frame: &Bytes) -> (Option<&str>, Bytes) {
    const EVENT: &[u8] = b"event: ";
    let line_end = |from: usize| {
        frame[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| from + at + 1)
    };
    // Past the `id:` line.
    let Some(mut data) = line_end(0) else {
        return (None, frame.clone());
    };
    let mut name = None;
    if frame[data..].starts_with(EVENT)
        && let Some(end) = line_end(data)
    {
        name = std::str::from_utf8(&frame[data + EVENT.len()..end - 1]).ok();
        data = end;
    }
    (name, frame.slice(data..))
}

/// Why a channel's numbering jumped (see [`ChannelState::restart`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restart {
    /// A new epoch: the ids started over.
    Epoch,
    /// The same numbering, with events this node never got and can no longer fetch.
    Gap,
}

/// The readers a publish queued a frame for that were waiting for one. Dropping this wakes
/// them, so none can be forgotten; [`Wakeups::wake_later`] moves a large fan-out's waking off
/// the publisher's path (its channel lock, its `202`).
#[derive(Debug, Default)]
pub(super) struct Wakeups(Vec<Waker>);

/// From this many readers on, a task of their own wakes them (fewer are woken at once: a
/// spawn costs about as much as a few dozen wake-ups).
const WAKE_IN_A_TASK: usize = 64;

impl Wakeups {
    /// Wake them now, or from a task of their own when there are many and a runtime to
    /// spawn on; either way after the caller let go of the channel's lock.
    pub(super) fn wake_later(mut self) {
        if self.0.len() < WAKE_IN_A_TASK {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let readers = Wakeups(std::mem::take(&mut self.0));
            runtime.spawn(async move { drop(readers) });
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.0.drain(..).for_each(Waker::wake);
    }
}

/// What one publish did.
#[derive(Debug)]
pub(super) struct Delivery {
    pub(super) id: u64,
    /// Subscribers the event was queued for.
    pub(super) delivered: usize,
    /// Subscribers cut as `slow` because their queue was full.
    pub(super) slow: u64,
    /// The subscribers to wake.
    pub(super) wakeups: Wakeups,
}

impl Channel {
    /// A channel with no events yet, idle from now; `idle` is told `key` whenever its last
    /// subscriber leaves.
    pub(super) fn new(key: &str, idle: Option<IdleHook>) -> Self {
        Self {
            state: Mutex::new(ChannelState {
                last_id: 0,
                ring: VecDeque::new(),
                subscribers: HashMap::new(),
                next_subscriber: 0,
                idle_since: Some(Instant::now()),
                dropped: 0,
                reconnects: 0,
                finished: false,
                epoch: None,
            }),
            sent: Arc::new(AtomicU64::new(0)),
            idle: idle.map(|hook| (key.to_string(), hook)),
        }
    }
}

impl ChannelState {
    /// Number the event, keep it in the ring and queue it for every subscriber. A full
    /// queue cuts that subscriber as `slow` (and drops its transport) instead of waiting.
    pub(super) fn publish(
        &mut self,
        key: &str,
        name: Option<&EventName>,
        data: &str,
        limits: Limits,
    ) -> Delivery {
        let id = self.last_id + 1;
        self.push_numbered(key, id, encode(id, name, data), limits)
    }

    /// Keep an event numbered elsewhere (by Redis) in the ring and queue it for every
    /// subscriber, as [`ChannelState::publish`] does with its own numbers.
    pub(super) fn push_numbered(
        &mut self,
        key: &str,
        id: u64,
        bytes: Bytes,
        limits: Limits,
    ) -> Delivery {
        self.last_id = id;
        if limits.replay > 0 {
            if self.ring.len() == limits.replay {
                self.ring.pop_front();
            }
            self.ring.push_back((id, bytes.clone()));
        }
        self.push_all(key, Mark::Event(id), bytes, limits)
    }

    /// The channel continues at `first` and what came before is gone: every subscriber gets
    /// `event: reset` saying so, and the ring forgets. `Restart::Epoch`: the ids started over
    /// (Redis lost the channel), so every subscriber must take what follows. `Restart::Gap`:
    /// the ring that events come from moved on while this node was cut off; a subscriber
    /// whose replay already went past the gap drops the reset like any event it has. Gives
    /// how many subscribers were told.
    pub(super) fn restart(&mut self, key: &str, first: u64, why: Restart, limits: Limits) -> usize {
        let (reset, frame) = super::replay::reset_frame(self.last_id, first, first);
        tracing::warn!(
            channel = key,
            last_id = self.last_id,
            first,
            ?why,
            "events before the first one held are gone: subscribers get reset"
        );
        self.ring.clear();
        self.last_id = reset.cursor();
        let mark = Mark::Reset {
            cursor: self.last_id,
            restart: why == Restart::Epoch,
        };
        self.push_all(key, mark, frame, limits).delivered
    }

    /// Queue `bytes` for every subscriber; a full queue cuts that subscriber as `slow`.
    fn push_all(&mut self, key: &str, mark: Mark, bytes: Bytes, limits: Limits) -> Delivery {
        let mut delivered = 0;
        let mut slow = 0;
        let mut wakeups = Wakeups(Vec::with_capacity(self.subscribers.len()));
        self.subscribers.retain(|_, subscriber| match subscriber.queue.push(mark, bytes.clone()) {
            Ok(reader) => {
                delivered += 1;
                wakeups.0.extend(reader);
                true
            }
            Err(QueueFull) => {
                slow += 1;
                tracing::warn!(
                    channel = key,
                    connection = subscriber.meta.connection_id,
                    queue = limits.queue,
                    "subscriber too slow: queue full, disconnecting (it can resume from the ring)"
                );
                subscriber.queue.end(CloseReason::Slow, true);
                if let Some(drop_transport) = &subscriber.meta.drop_transport {
                    (drop_transport.0)();
                }
                false
            }
        });
        self.dropped += slow;
        self.note_idle();
        Delivery {
            id: mark.cursor(),
            delivered,
            slow,
            wakeups,
        }
    }

    /// Apply the one-subscriber policy before a newcomer joins: refuse it, or end the
    /// older subscribers with `replaced`.
    pub(super) fn make_room(
        &mut self,
        key: &str,
        exclusive: Exclusive,
    ) -> Result<(), SubscribeError> {
        match exclusive {
            Exclusive::Shared => {}
            Exclusive::Reject if !self.subscribers.is_empty() => {
                return Err(SubscribeError::Busy);
            }
            Exclusive::Reject => {}
            Exclusive::Replace => {
                for (_, older) in self.subscribers.drain() {
                    tracing::info!(
                        channel = key,
                        connection = older.meta.connection_id,
                        "same id subscribed again: the older stream is replaced"
                    );
                    older.queue.end(CloseReason::Replaced, true);
                }
            }
        }
        Ok(())
    }

    /// Register a live subscriber with a queue of `queue` frames; it gets every event
    /// published from now on. Gives its id and what its subscription shares with the channel.
    pub(super) fn register(&mut self, meta: SubscriberMeta, queue: usize) -> (u64, Arc<Member>) {
        let member = Arc::new(Member {
            queue: Queue::new(queue.max(1)),
            meta,
        });
        self.next_subscriber += 1;
        let subscriber_id = self.next_subscriber;
        self.subscribers
            .insert(subscriber_id, Subscriber(member.clone()));
        self.idle_since = None;
        (subscriber_id, member)
    }

    /// A subscriber's stream went away.
    /// Gives whether that was the last one.
    pub(super) fn leave(&mut self, subscriber_id: u64) -> bool {
        let left = self.subscribers.remove(&subscriber_id).is_some();
        self.note_idle();
        left && self.subscribers.is_empty()
    }

    /// End every subscriber with `reason` once its queue drains; with `finish`, nobody
    /// may follow the channel live again. Gives how many were ended.
    pub(super) fn close(&mut self, reason: CloseReason, finish: bool) -> usize {
        self.finished |= finish;
        let closed = self.subscribers.len();
        for (_, subscriber) in self.subscribers.drain() {
            subscriber.queue.end(reason, false);
        }
        self.note_idle();
        closed
    }

    /// Idle from now, unless someone is subscribed or it already was.
    pub(super) fn note_idle(&mut self) {
        if self.subscribers.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
    }

    pub(super) fn info(&self, sent: &AtomicU64) -> ChannelInfo {
        ChannelInfo {
            last_id: self.last_id,
            first_held: self.ring.front().map(|(id, _)| *id),
            subscriber_count: self.subscribers.len(),
            first_subscriber: self.subscribers.values().next().map(|s| SubscriberInfo {
                meta: s.meta.clone(),
                queued: s.queue.len(),
            }),
            sent: sent.load(Ordering::Relaxed),
            dropped: self.dropped,
            reconnects: self.reconnects,
            idle_since: self.idle_since,
            finished: self.finished,
        }
    }
}
