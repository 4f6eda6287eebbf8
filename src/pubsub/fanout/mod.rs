//! Fan-out by channel: numbered events, a bounded replay ring, and subscribers with bounded
//! queues. Sessions, topics and orders are all channels here; [`super::hub`] and
//! [`super::orders`] decide what a channel means.
//!
//! This is the one boundary a multi-node (for example Redis-backed) implementation would
//! replace: `publish`, `subscribe`, `close`, `info`. It deliberately knows nothing of HTTP.
//!
//! Guarantees: publishing never blocks (a subscriber whose queue is full is cut with reason
//! `slow` and catches up from the ring when it reconnects); a subscribe registers under the
//! same lock that collects its replay, so nothing falls between replay and live; a
//! `Last-Event-ID` older than the ring gets an explicit `reset` event, never a silent gap;
//! a subscription's registration holds only a `Weak` to its channel, so dropping it
//! unregisters exactly once and never revives a removed channel.
//!
//! A finished channel (an order that is done) takes no more events and registers nobody,
//! but still gives what a subscriber lacks, then ends its stream: a first subscribe
//! ([`StartAt::Start`]) gets the ring's last event — the final state, with its own id — and a
//! resume after an older id gets the events after it (a `reset` first if the ring lost some).
//! A subscriber that already holds the last id, or asks only for live events, gets
//! [`SubscribeError::Finished`]: there is nothing more to give it.
//!
//! The files: this one holds [`Fanout`], the map of channels by key; `types.rs` the types
//! callers pass and get back; `channel.rs` one channel's numbering, ring and subscribers;
//! `replay.rs` what a subscriber gets before live events; `queue.rs` a subscriber's bounded
//! queue and how it is told to stop; `subscription.rs` the subscriber's side (its stream
//! and its registration); `remote.rs` events numbered elsewhere (by Redis) for the local
//! subscribers.

mod channel;
mod queue;
mod remote;
mod replay;
mod subscription;
#[cfg(test)]
pub(super) mod testing;
#[cfg(test)]
mod tests;
mod types;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use channel::{Channel, IdleHook};
pub(crate) use channel::{encode, split_event};
pub(crate) use replay::reset_frame;
pub(crate) use subscription::Ending;
use subscription::Live;
pub use subscription::{Subscription, SubscriptionStream};
pub use types::{
    ChannelInfo, DropTransport, Exclusive, FanoutTotals, Limits, Mark, Published, Replay, StartAt,
    SubscribeError, SubscriberInfo, SubscriberMeta,
};

use crate::sse::{CloseReason, EventName};
use crate::sync::lock;

/// Channels by key. A cheap clone over shared state.
#[derive(Debug, Clone)]
pub struct Fanout {
    shared: Arc<FanoutShared>,
}

#[derive(Debug)]
struct FanoutShared {
    limits: Limits,
    channels: Mutex<Channels>,
    totals: Totals,
    idle: OnceLock<IdleHook>,
}

/// The channel map, with a count per kind (the key up to its `:`), so "how many sessions"
/// is O(1) even with 100k channels.
#[derive(Debug, Default)]
struct Channels {
    map: HashMap<String, Arc<Channel>>,
    per_kind: HashMap<String, usize>,
}

fn kind_of(key: &str) -> &str {
    key.find(':').map_or(key, |at| &key[..=at])
}

impl Channels {
    fn get_or_insert(&mut self, key: &str, make: impl FnOnce() -> Arc<Channel>) -> Arc<Channel> {
        if let Some(channel) = self.map.get(key) {
            return channel.clone();
        }
        let channel = make();
        self.map.insert(key.to_string(), channel.clone());
        *self.per_kind.entry(kind_of(key).to_string()).or_default() += 1;
        channel
    }

    fn remove(&mut self, key: &str) -> bool {
        let removed = self.map.remove(key).is_some();
        if removed && let Some(n) = self.per_kind.get_mut(kind_of(key)) {
            *n -= 1;
        }
        removed
    }
}

/// Counters over every channel since start.
#[derive(Debug, Default)]
struct Totals {
    published: AtomicU64,
    replayed: AtomicU64,
    resets: AtomicU64,
    slow: AtomicU64,
}

impl Totals {
    /// A replay of `frames` frames was handed out, the first a `reset` if `reset`.
    fn count_replay(&self, frames: usize, reset: bool) {
        self.resets.fetch_add(u64::from(reset), Ordering::Relaxed);
        let replayed = frames - usize::from(reset);
        self.replayed.fetch_add(replayed as u64, Ordering::Relaxed);
    }
}

impl Fanout {
    pub fn new(limits: Limits) -> Self {
        Self {
            shared: Arc::new(FanoutShared {
                limits,
                channels: Mutex::new(Channels::default()),
                totals: Totals::default(),
                idle: OnceLock::new(),
            }),
        }
    }

    fn channel(&self, key: &str) -> Option<Arc<Channel>> {
        lock(&self.shared.channels).map.get(key).cloned()
    }

    fn channel_or_create(&self, key: &str) -> Arc<Channel> {
        let idle = self.shared.idle.get().cloned();
        lock(&self.shared.channels).get_or_insert(key, || Arc::new(Channel::new(key, idle)))
    }

    /// From now on, `hook` is told a channel's key each time its last subscriber leaves
    /// (the Redis backend lets go of a session's claim). Set once; later calls are ignored.
    pub fn on_idle(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.shared.idle.set(IdleHook(Arc::new(hook)));
    }

    pub fn exists(&self, key: &str) -> bool {
        lock(&self.shared.channels).map.contains_key(key)
    }

    /// Create the channel if it does not exist yet.
    pub fn ensure(&self, key: &str) {
        self.channel_or_create(key);
    }

    /// Number the event, keep it in the ring and queue it for every subscriber. Never
    /// blocks: a full queue cuts that subscriber as `slow`. `None` if the channel does not
    /// exist or has finished.
    pub fn publish(&self, key: &str, name: Option<&EventName>, data: &str) -> Option<Published> {
        let channel = self.channel(key)?;
        let mut state = lock(&channel.state);
        if state.finished {
            return None;
        }
        let delivery = state.publish(key, name, data, self.shared.limits);
        drop(state);
        delivery.wakeups.wake_later();
        let totals = &self.shared.totals;
        totals.published.fetch_add(1, Ordering::Relaxed);
        totals.slow.fetch_add(delivery.slow, Ordering::Relaxed);
        Some(Published {
            id: delivery.id,
            subscribers: delivery.delivered,
        })
    }

    /// Subscribe, creating the channel when missing. Replay is collected under the same lock
    /// that registers the subscriber, so no event can fall between replay and live. On a
    /// finished channel the subscription is its replay only (see the module doc), and
    /// `exclusive` does not apply: nobody is registered.
    pub fn subscribe(
        &self,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
        exclusive: Exclusive,
    ) -> Result<Subscription, SubscribeError> {
        let channel = self.channel_or_create(key);
        self.subscribe_to(channel, key, from, meta, exclusive)
    }

    /// [`Fanout::subscribe`] to a channel that must exist already: `None` when it does not,
    /// so a channel forgotten meanwhile is never made again, empty (an order after its
    /// linger).
    pub fn subscribe_existing(
        &self,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
        exclusive: Exclusive,
    ) -> Option<Result<Subscription, SubscribeError>> {
        let channel = self.channel(key)?;
        Some(self.subscribe_to(channel, key, from, meta, exclusive))
    }

    fn subscribe_to(
        &self,
        channel: Arc<Channel>,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
        exclusive: Exclusive,
    ) -> Result<Subscription, SubscribeError> {
        let mut state = lock(&channel.state);
        let (cursor, replay, reset) = if state.finished {
            state
                .replay_finished(from)
                .ok_or(SubscribeError::Finished)?
        } else {
            state.make_room(key, exclusive)?;
            state.replay(from)
        };
        if matches!(from, StartAt::After(_)) {
            state.reconnects += 1;
        }
        self.shared.totals.count_replay(replay.len(), reset);
        // A finished channel has nothing live to follow: its subscriber is not registered.
        let live = (!state.finished).then(|| {
            let (subscriber_id, member) = state.register(meta, self.shared.limits.queue);
            Live::new(&channel, subscriber_id, member)
        });
        drop(state);
        Ok(Subscription::new(
            cursor,
            replay,
            channel.sent.clone(),
            live,
        ))
    }

    /// End every subscriber with `reason` after its queue drains (`bye`), and optionally mark
    /// the channel finished so nobody follows it live again (an order that is done).
    pub fn close(&self, key: &str, reason: CloseReason, finish: bool) -> usize {
        let Some(channel) = self.channel(key) else {
            return 0;
        };
        lock(&channel.state).close(reason, finish)
    }

    /// Forget a channel (its subscribers end with `reason` after draining).
    pub fn remove(&self, key: &str, reason: CloseReason) -> bool {
        self.close(key, reason, true);
        lock(&self.shared.channels).remove(key)
    }

    pub fn info(&self, key: &str) -> Option<ChannelInfo> {
        let channel = self.channel(key)?;
        let info = lock(&channel.state).info(&channel.sent);
        Some(info)
    }

    pub fn totals(&self) -> FanoutTotals {
        let totals = &self.shared.totals;
        FanoutTotals {
            published: totals.published.load(Ordering::Relaxed),
            replayed: totals.replayed.load(Ordering::Relaxed),
            resets: totals.resets.load(Ordering::Relaxed),
            slow: totals.slow.load(Ordering::Relaxed),
        }
    }

    /// How many events wait in each subscriber's queue right now.
    pub fn queue_depths(&self) -> Vec<usize> {
        let channels: Vec<Arc<Channel>> =
            lock(&self.shared.channels).map.values().cloned().collect();
        channels
            .iter()
            .flat_map(|channel| {
                lock(&channel.state)
                    .subscribers
                    .values()
                    .map(|s| s.queue.len())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.shared.channels)
            .map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Channels of one kind (`"session:"`, `"topic:"`…), in O(1).
    pub fn count(&self, kind: &str) -> usize {
        lock(&self.shared.channels)
            .per_kind
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    /// Remove channels under `prefix` that nobody has subscribed to for `linger`. Returns
    /// the removed keys.
    pub fn sweep_idle(&self, prefix: &str, linger: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut channels = lock(&self.shared.channels);
        let expired: Vec<String> = channels
            .map
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .filter(|(_, channel)| {
                lock(&channel.state)
                    .idle_since
                    .is_some_and(|since| now.duration_since(since) >= linger)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            channels.remove(key);
        }
        expired
    }
}
