//! The node's one pub/sub connection to Redis: it subscribes to the live channel of every
//! channel that has a subscriber on this node and feeds their local queues.
//!
//! When the connection drops (Redis stopped, restarted, network), streams stay open; the
//! link retries with backoff, subscribes again to everything it followed, then catches each
//! channel up from its Redis stream before it reads live messages again, so what was
//! published meanwhile arrives once, in order (a reset first if the ring or the epoch moved
//! on). Until then the node reports itself degraded. A `PING` every second finds a
//! connection that went silent without closing.
//!
//! No connection per subscriber and no polling: one connection, one `SUBSCRIBE` per channel.
//! With Sentinel, each connection goes to the master the Sentinels name then. A cluster's
//! pub/sub is per shard instead (`shards.rs`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio_util::sync::CancellationToken;

use super::scripts::{self, LiveMessage, key_of_live, live_channel};
use super::{RedisBus, Unavailable, shards};
use crate::sync::lock;

/// The first wait before connecting again; doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// One attempt a second at most: cheap for a Redis that is down, and a Sentinel failover
/// (about 3 s) is followed within a second (with 5 s, measured: 3 s after publishes worked).
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long one connection attempt (or its `SUBSCRIBE`) may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the link checks that Redis still answers on it: a connection that went silent
/// without closing (a partition, a paused Redis) would otherwise look healthy forever.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a heartbeat's `PING` may take before the connection is given up and made again.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// The link's state, shared between its task and the subscribe path.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// The subscribing half of the current connection; `None` while disconnected.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Channel keys followed: subscribed on the current connection (when there is one),
    /// and subscribed again on the next.
    followed: Mutex<HashSet<String>>,
    up: AtomicBool,
    /// Connections made after the first: how often Redis came back.
    pub(super) reconnects: AtomicU64,
    /// Connections lost or refused.
    pub(super) failures: AtomicU64,
}

impl Link {
    pub(super) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A connection was lost or refused.
    pub(super) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Make sure this node receives `key`'s live events from now on: the `SUBSCRIBE` is
    /// confirmed before this returns, so anything published after it reaches this node.
    pub(super) async fn follow(&self, key: &str) -> Result<(), Unavailable> {
        let mut sink = self.sink.lock().await;
        let Some(subscriber) = sink.as_mut() else {
            return Err(Unavailable::new("the pub/sub connection is down"));
        };
        if lock(&self.followed).contains(key) {
            return Ok(());
        }
        subscriber
            .subscribe(live_channel(key))
            .await
            .map_err(|e| Unavailable::new(format!("SUBSCRIBE failed: {e}")))?;
        lock(&self.followed).insert(key.to_string());
        Ok(())
    }

    /// Stop following channels this node forgot (nobody subscribed for their linger).
    pub(super) async fn unfollow(&self, keys: &[String]) {
        let mut followed: Vec<String> = Vec::new();
        {
            let mut set = lock(&self.followed);
            for key in keys {
                if set.remove(key) {
                    followed.push(live_channel(key));
                }
            }
        }
        if followed.is_empty() {
            return;
        }
        if let Some(subscriber) = self.sink.lock().await.as_mut() {
            // A failure leaves a subscription this node ignores; the next connection drops it.
            let _ = subscriber.unsubscribe(followed).await;
        }
    }

    fn followed(&self) -> Vec<String> {
        lock(&self.followed).iter().cloned().collect()
    }
}

/// Run the link until `stop`: connect, follow, catch up, deliver; on loss, back off and
/// do it again. A cluster's link is per shard (`shards::run`), once Redis said it is one.
pub(super) async fn run(bus: RedisBus, stop: CancellationToken) {
    let link = &bus.shared.link;
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    while !stop.is_cancelled() {
        match connect_and_serve(&bus, &stop, &mut connected_before).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(Lost::Cluster) => return shards::run(bus, stop).await,
            Err(Lost::Reason(reason)) => {
                link.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "redis pub/sub: {reason}; streams stay open and catch up when it is back"
                );
            }
        }
        // With Sentinel, ask for the master again: a failover may have moved it.
        bus.shared.backend.failed();
        link.up.store(false, Ordering::Relaxed);
        *link.sink.lock().await = None;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Why a connection could not start.
enum Lost {
    /// Redis is a cluster: its pub/sub is per shard.
    Cluster,
    Reason(String),
}

impl From<String> for Lost {
    fn from(reason: String) -> Self {
        Self::Reason(reason)
    }
}

/// One connection's life. `Ok` when it ended after working, `Err` when it could not start.
async fn connect_and_serve(
    bus: &RedisBus,
    stop: &CancellationToken,
    connected_before: &mut bool,
) -> Result<(), Lost> {
    let link = &bus.shared.link;
    let client = match bus.shared.backend.master_client().await? {
        Some(client) => client,
        None => return Err(Lost::Cluster),
    };
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    // The command connection too: healthy means a publish would be taken now.
    bus.load_scripts().await.map_err(|e| e.reason)?;
    let (mut sink, mut messages) = pubsub.split();
    let followed = link.followed();
    if !followed.is_empty() {
        let channels: Vec<String> = followed.iter().map(|k| live_channel(k)).collect();
        tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(channels))
            .await
            .map_err(|_| "SUBSCRIBE timed out".to_string())?
            .map_err(|e| format!("SUBSCRIBE failed: {e}"))?;
    }
    // Subscribed first, read the streams second: nothing published in between is missed,
    // and what arrives twice is dropped by id.
    for key in &followed {
        bus.catch_up(key)
            .await
            .map_err(|e| format!("catching up {key}: {}", e.reason))?;
    }
    let mut heartbeat_sink = sink.clone();
    *link.sink.lock().await = Some(sink);
    link.up.store(true, Ordering::Relaxed);
    if *connected_before {
        link.reconnects.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            channels = followed.len(),
            "redis pub/sub: connected again; followed channels caught up"
        );
    }
    *connected_before = true;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = heartbeat.tick() => {
                let ping = heartbeat_sink.ping::<redis::Value>();
                if !matches!(tokio::time::timeout(HEARTBEAT_TIMEOUT, ping).await, Ok(Ok(_))) {
                    link.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("redis pub/sub: no answer to PING; connecting again");
                    return Ok(());
                }
            }
            message = messages.next() => match message {
                Some(message) => bus.on_live(message.get_channel_name(), message.get_payload_bytes()),
                None => {
                    link.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("redis pub/sub: connection lost; reconnecting");
                    return Ok(());
                }
            },
        }
    }
}

impl RedisBus {
    /// A message on a live channel: an event for this node's subscribers, or a control
    /// message.
    pub(super) fn on_live(&self, channel: &str, payload: &[u8]) {
        let Some(key) = key_of_live(channel) else {
            return;
        };
        match scripts::parse_live(payload) {
            Some(LiveMessage::Event { epoch, event }) => self.deliver(key, &epoch, &event),
            Some(LiveMessage::Replaced { node }) => self.replaced_elsewhere(key, &node),
            Some(LiveMessage::Deleted { node }) => self.deleted_elsewhere(key, &node),
            Some(LiveMessage::Finished) => self.finished(key),
            None => tracing::warn!(
                channel = key,
                "redis pub/sub: a message sselab did not write, ignored"
            ),
        }
    }

    /// The channel key of a live event on `channel` that is not the next this node expects
    /// (events it missed come before it); `None` for the next one, a repeat, a new numbering
    /// (told as a reset) or a control message.
    pub(super) fn gap_before<'a>(&self, channel: &'a str, payload: &[u8]) -> Option<&'a str> {
        let key = key_of_live(channel)?;
        let Some(LiveMessage::Event { epoch, event }) = scripts::parse_live(payload) else {
            return None;
        };
        let (known, last_id) = self.shared.fanout.numbering(key)?;
        (known.as_deref() == Some(epoch.as_str()) && event.id > last_id.saturating_add(1))
            .then_some(key)
    }

    /// Receive `key`'s live events on this node from now on (confirmed before this returns).
    pub(super) async fn follow(&self, key: &str) -> Result<(), Unavailable> {
        match self.is_cluster() {
            true => self.shared.shards.follow(key).await,
            false => self.shared.link.follow(key).await,
        }
    }
}
