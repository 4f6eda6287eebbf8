//! The Redis backend: many sselab nodes share one set of channels. Redis numbers each
//! channel's events and keeps its replay ring; every node keeps its own subscribers in its
//! local [`Fanout`] and feeds them from one pub/sub connection (`link.rs`).
//!
//! - **Publish** is one Lua script (`scripts.rs`): `INCR` the id, `XADD` the event to the
//!   channel's stream (`MAXLEN ~` the replay size), `PUBLISH` it, refresh the expiry (the
//!   linger) — one round trip, atomic. Local subscribers get it from pub/sub like everyone
//!   else's, so every node sees one order. Redis unreachable: [`Unavailable`] (503), saying
//!   whether the event may still go out: a script sent before the connection broke, or whose
//!   answer came late, may have run (seen behind a partition: it ran when the link healed).
//! - **Subscribe** registers locally first, confirms the node's `SUBSCRIBE`, then reads the
//!   missed events with `XRANGE` (one script) and drops live ones it already replayed by id:
//!   no gap, no duplicate. A ring that moved on gets `event: reset`, as in-process.
//! - **Epochs**: a channel's numbering starts (first publish or subscribe, and again after
//!   Redis lost or expired it) at Redis's clock in microseconds, with a new epoch token that
//!   events carry (a node that sees a new one tells its subscribers `reset`). A new numbering
//!   thus begins above every id an older one gave (each publish takes Redis over a
//!   microsecond), so a `Last-Event-ID` from before is below the ring on any node, even one
//!   that never saw the old epoch: `reset`, never a silent gap. The id stays a plain number
//!   (about 1.8e15, exact in JavaScript until 2255), if Redis's clock never steps back further
//!   than the old numbering lasted.
//!
//! - **Same id**, cluster-wide: with `--same-id replace` a session's subscribe publishes a
//!   control message on its channel, and every other node ends its older subscribers with
//!   `replaced`; with `reject` the node that holds the subscriber holds a claim in Redis
//!   (released when its last subscriber leaves, expiring with the linger if the node dies),
//!   and a subscribe on another node is refused.
//! - **Delete**: Redis forgets the session and keeps a tombstone (reconnects get 204 on any
//!   node); the other nodes end its stream with `bye`.
//!
//! - **Broadcast** finds every session in Redis (`SCAN`) and publishes to each.
//!
//! - **Orders**: an order runs on the node that created it (its id carries that node's tag);
//!   its end is a control message after its last event, so every node ends its followers
//!   there, and a later subscribe on any node gets what it lacks from Redis, then the end.
//!
//! - **Cluster, Sentinel, replicas**: `--redis` may name any node of a Redis Cluster (pub/sub
//!   sharded, one connection per shard master, failovers followed) or Sentinel's master; with
//!   `--redis-min-replicas N` a publish answers once N replicas have the event; a promoted
//!   master never gives an id again (the numbering jumps past the old master's).
//!
//! The files: this one holds [`RedisBus`] (publish, subscribe, catch-up); `backend.rs` which
//! Redis it is (one node, a cluster, Sentinel's master) and its connections; `scripts.rs` the
//! keys and Lua scripts; `replay.rs` the replay rules on Redis's ring; `link.rs` the pub/sub
//! connection to one master; `shards.rs` a cluster's, per shard; `waits.rs` `WAIT` for
//! `--redis-min-replicas`; `sessions.rs` the same-id policy, deletion and broadcast across
//! nodes; `orders.rs` an order's end and last detail across nodes.

mod backend;
mod link;
mod orders;
mod replay;
mod scripts;
mod sessions;
mod shards;
mod waits;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fanout::{
    Exclusive, Fanout, Published, StartAt, SubscribeError, SubscriberMeta, Subscription,
};
use crate::sse::{CloseReason, EventName};
use backend::{Backend, Commands};
pub use backend::{Kind, Target};
use link::Link;
use scripts::{Replayed, Scripts, StoredEvent, keys};
pub use sessions::IfDeleted;
pub use shards::ShardStatus;
use shards::Shards;
use waits::Waits;
/// Hex digits of the node id in ids made on this node (an order's): 16.7 million values.
const NODE_TAG: usize = 6;
/// Keys looked at per `SCAN` round trip.
const SCAN_COUNT: usize = 1000;
/// `XRANGE` from here reads nothing: a live subscriber only needs the last id and epoch.
const NOTHING: u64 = u64::MAX;

/// Redis could not be reached: the operation did nothing, and the caller may retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
}

impl Unavailable {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason, and what became of the publish that failed: a client deciding to retry
    /// needs to know.
    fn outcome(self, outcome: &str) -> Self {
        Self::new(format!("{}; {outcome}", self.reason))
    }
}

/// A publish that never reached Redis, or that Redis answered with an error.
const NOT_ACCEPTED: &str = "nothing was accepted";
/// A publish sent before its connection broke or its answer was late: it may have run.
const MAY_HAVE_RUN: &str = "it may still be delivered";

/// What a publish whose script failed with `error` may have done.
fn outcome(error: &redis::RedisError) -> &'static str {
    let lost_in_flight = error.is_timeout() || error.is_io_error();
    match lost_in_flight && !error.is_connection_refusal() {
        true => MAY_HAVE_RUN,
        false => NOT_ACCEPTED,
    }
}

/// Why a subscribe through Redis failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSubscribeError {
    /// The local same-id policy refused it.
    Refused(SubscribeError),
    /// A reconnect to a session deleted on some node ([`IfDeleted::Refuse`]).
    Deleted,
    /// Not in Redis, and the subscribe was not to create it (an order).
    NotFound,
    Unavailable(Unavailable),
}

/// What the Redis backend counted, for `/metrics` and `/healthz`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisStatus {
    /// Which kind of Redis (`None` until first reached).
    pub kind: Option<Kind>,
    /// The pub/sub connection is up (live events flow); on a cluster, every shard's.
    pub connected: bool,
    /// Publishes and subscribes refused because Redis did not answer.
    pub failures: u64,
    /// Pub/sub connections lost or refused.
    pub link_failures: u64,
    /// Times the pub/sub connection came back.
    pub reconnects: u64,
    /// A cluster's shards, by first slot (empty on one node or with Sentinel).
    pub shards: Vec<ShardStatus>,
    /// Publishes refused because fewer than `--redis-min-replicas` replicas confirmed them.
    pub unconfirmed: u64,
}

/// The Redis backend: a cheap clone over shared state.
#[derive(Debug, Clone)]
pub struct RedisBus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    backend: Backend,
    fanout: Fanout,
    scripts: Scripts,
    link: Link,
    /// A cluster's pub/sub, one connection per shard.
    shards: Shards,
    /// `--redis-min-replicas`: dedicated connections for `WAIT`, and what they confirmed.
    waits: Waits,
    /// The replay ring's size in Redis (`MAXLEN ~`).
    ring: usize,
    linger_ms: u64,
    failures: AtomicU64,
    /// This node, in control messages (a session replaced elsewhere).
    node: String,
}

impl RedisBus {
    /// A backend for `url` (`redis://`, `rediss://`: one node or a cluster's seed;
    /// `redis+sentinel://`, `rediss+sentinel://`: Sentinel's master) feeding `fanout`'s local
    /// subscribers; `ca` (PEM) is the only root a TLS Redis's certificate is checked against,
    /// when given (else the system's roots). A publish answers only once `min_replicas`
    /// replicas have its event. Connects lazily: a bad URL fails here, an unreachable Redis
    /// shows as degraded later.
    pub fn new(
        url: &str,
        ca: Option<Vec<u8>>,
        fanout: Fanout,
        ring: usize,
        linger: Duration,
        min_replicas: usize,
    ) -> Result<Self, String> {
        Ok(Self {
            shared: Arc::new(Shared {
                backend: Backend::new(url, ca)?,
                fanout,
                scripts: Scripts::new(),
                link: Link::default(),
                shards: Shards::default(),
                waits: Waits::new(min_replicas),
                ring: ring.max(1),
                linger_ms: linger.as_millis().max(1) as u64,
                failures: AtomicU64::new(0),
                node: new_epoch(),
            }),
        })
    }

    /// Start the pub/sub link (one connection, or one per shard of a cluster); it runs until
    /// `stop`.
    pub fn spawn_link(&self, stop: CancellationToken) {
        tokio::spawn(link::run(self.clone(), stop));
    }

    /// Whether this is a cluster (known once Redis was first reached).
    fn is_cluster(&self) -> bool {
        self.shared.backend.kind() == Some(Kind::Cluster)
    }

    pub fn status(&self) -> RedisStatus {
        let link = &self.shared.link;
        let kind = self.shared.backend.kind();
        let shards = self.shared.shards.status();
        RedisStatus {
            kind,
            connected: match kind {
                Some(Kind::Cluster) => !shards.is_empty() && shards.iter().all(|s| s.connected),
                _ => link.is_up(),
            },
            failures: self.shared.failures.load(Ordering::Relaxed),
            link_failures: link.failures.load(Ordering::Relaxed),
            reconnects: link.reconnects.load(Ordering::Relaxed),
            shards,
            unconfirmed: self.shared.waits.unconfirmed(),
        }
    }

    fn failed(&self, what: &str, error: impl std::fmt::Display) -> Unavailable {
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
        self.shared.backend.failed();
        Unavailable::new(format!("{what}: {error}"))
    }

    /// A handle for commands and scripts (connecting first, if need be).
    async fn commands(&self, what: &str) -> Result<Commands, Unavailable> {
        self.shared
            .backend
            .commands()
            .await
            .map_err(|e| self.failed(what, e))
    }

    /// How live messages are sent: sharded pub/sub on a cluster (`SPUBLISH` goes to the
    /// channel's shard only; a classic `PUBLISH` would reach every node of the cluster).
    fn publish_command(&self) -> &'static str {
        match self.shared.backend.kind() {
            Some(Kind::Cluster) => "SPUBLISH",
            _ => "PUBLISH",
        }
    }

    /// Publish to channel `key` across the cluster. `Ok(None)` when `must_exist` and
    /// the channel is not in Redis (a session nobody subscribed to, or expired). With
    /// `--redis-min-replicas N`, only once N replicas have the event (`WAIT`, on a connection
    /// of its own: `WAIT` holds the connection it is sent on).
    pub async fn publish(
        &self,
        key: &str,
        name: Option<&EventName>,
        data: &str,
        must_exist: bool,
    ) -> Result<Option<Published>, Unavailable> {
        let shared = &self.shared;
        let waiting = shared.waits.enabled();
        let (mut commands, permit) = match waiting {
            false => {
                let commands = self.commands("publish").await;
                (commands.map_err(|e| e.outcome(NOT_ACCEPTED))?, None)
            }
            true => {
                let (commands, permit) = shared
                    .waits
                    .take(&shared.backend)
                    .await
                    .map_err(|e| self.failed("publish", e).outcome(NOT_ACCEPTED))?;
                (commands, Some(permit))
            }
        };
        let keys = keys(key);
        let reply: Option<(u64, usize, String)> = shared
            .scripts
            .publish
            .key(&keys)
            .arg(scripts::live_channel(key))
            .arg(name.map_or("", EventName::as_str))
            .arg(data)
            .arg(shared.ring)
            .arg(shared.linger_ms)
            .arg(new_epoch())
            .arg(if must_exist { "1" } else { "0" })
            .arg(self.publish_command())
            .invoke_async(&mut commands)
            .await
            .map_err(|e| {
                let outcome = outcome(&e);
                self.failed("publish", e).outcome(outcome)
            })?;
        let Some((id, nodes, _epoch)) = reply else {
            shared.waits.give_back(commands, permit);
            return Ok(None);
        };
        if waiting {
            shared.waits.confirm(&mut commands, &keys[0], id).await?;
            shared.waits.give_back(commands, permit);
        }
        Ok(Some(Published {
            id,
            subscribers: nodes,
        }))
    }

    /// Load the scripts on the command connection (which reconnects on the next command
    /// after a failure): once per connection instead of a `NOSCRIPT` retry per caller when
    /// thousands subscribe at once after Redis restarted; a failure means Redis is not back.
    async fn load_scripts(&self) -> Result<(), Unavailable> {
        let scripts = &self.shared.scripts;
        let mut commands = self.commands("SCRIPT LOAD").await?;
        for script in scripts.all() {
            script
                .load_async(&mut commands)
                .await
                .map_err(|e| self.failed("SCRIPT LOAD", e))?;
        }
        Ok(())
    }

    /// Whether the channel exists in Redis (without creating it); keeps it from expiring.
    pub async fn touch(&self, key: &str) -> Result<bool, Unavailable> {
        let shared = &self.shared;
        shared
            .scripts
            .touch
            .key(&keys(key))
            .arg(shared.linger_ms)
            .arg(&shared.node)
            .invoke_async(&mut self.commands("touch").await?)
            .await
            .map_err(|e| self.failed("touch", e))
    }

    /// Subscribe to `key` from `from`: register here, follow it live, then replay from Redis.
    /// The numbering starts in Redis when missing, so posts from other nodes find the
    /// channel (a session's first subscribe).
    pub async fn subscribe(
        &self,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
        exclusive: Exclusive,
        if_deleted: IfDeleted,
        create: bool,
    ) -> Result<Subscription, RedisSubscribeError> {
        let fanout = &self.shared.fanout;
        let unavailable = RedisSubscribeError::Unavailable;
        // Registered here first, so nothing published from now on is missed; not on a
        // channel that already finished here (an order that is done): its replay is all.
        let live = match fanout.subscribe(key, StartAt::Live, meta, exclusive) {
            Ok(live) => Some(live),
            Err(SubscribeError::Finished) => None,
            Err(refused) => return Err(RedisSubscribeError::Refused(refused)),
        };
        if live.is_some() {
            self.follow(key).await.map_err(unavailable)?;
        }
        let first_wanted = match from {
            StartAt::Live => NOTHING,
            StartAt::Start => 1,
            StartAt::After(k) => k.saturating_add(1),
        };
        let claim = exclusive == Exclusive::Reject;
        let stored = match self
            .read(key, first_wanted, create, if_deleted, claim)
            .await
            .map_err(unavailable)?
        {
            Replayed::Stored(stored) => stored,
            Replayed::Deleted => return Err(RedisSubscribeError::Deleted),
            Replayed::Busy => return Err(RedisSubscribeError::Refused(SubscribeError::Busy)),
        };
        if stored.epoch.is_empty() {
            // Not in Redis, and not to be made by subscribing (an order that never was, or
            // was forgotten after its linger): let go of what the registration made here.
            drop(live);
            if fanout
                .info(key)
                .is_some_and(|info| info.subscriber_count == 0)
            {
                fanout.remove(key, CloseReason::End);
                self.forget(&[key.to_string()]).await;
            }
            return Err(RedisSubscribeError::NotFound);
        }
        let live = match live {
            Some(live) if !stored.finished => live,
            _ => {
                // Nothing live follows: only what the subscriber lacks, then the end.
                drop(live);
                let (cursor, frames, reset) = replay::replay_finished(from, &stored)
                    .ok_or(RedisSubscribeError::Refused(SubscribeError::Finished))?;
                fanout.count_replay(frames.len(), reset);
                return Ok(Subscription::replay_only(cursor, frames));
            }
        };
        if exclusive == Exclusive::Replace {
            self.replace_elsewhere(key).await.map_err(unavailable)?;
        }
        fanout.adopt_epoch(key, &stored.epoch);
        let (cursor, frames, reset) = replay::replay(from, &stored);
        fanout.count_replay(frames.len(), reset);
        Ok(live.with_replay(cursor, frames, stored.last_id))
    }

    /// The channel's events from `first_wanted` on, with its epoch and ring bounds, unless
    /// `if_deleted` refuses (a deleted session) or another node holds the session this node
    /// would `claim`.
    async fn read(
        &self,
        key: &str,
        first_wanted: u64,
        create: bool,
        if_deleted: IfDeleted,
        claim: bool,
    ) -> Result<Replayed, Unavailable> {
        let shared = &self.shared;
        let value: redis::Value = shared
            .scripts
            .replay
            .key(&keys(key))
            .arg(first_wanted)
            .arg(shared.linger_ms)
            .arg(new_epoch())
            .arg(if create { "1" } else { "0" })
            .arg(if_deleted.arg())
            .arg(if claim { shared.node.as_str() } else { "" })
            .invoke_async(&mut self.commands("replay").await?)
            .await
            .map_err(|e| self.failed("replay", e))?;
        scripts::parse_stored(&value).ok_or_else(|| Unavailable::new("replay: unexpected reply"))
    }

    /// After the pub/sub connection came back (or a channel was subscribed again on its
    /// shard's new master): deliver what `key`'s local subscribers
    /// missed, a `reset` first if the ring or the epoch moved on meanwhile.
    pub(super) async fn catch_up(&self, key: &str) -> Result<(), Unavailable> {
        let fanout = &self.shared.fanout;
        let Some((epoch, last_id)) = fanout.numbering(key) else {
            return Ok(());
        };
        let next = last_id.saturating_add(1);
        let Replayed::Stored(stored) = self
            .read(key, next, false, IfDeleted::Ignore, false)
            .await?
        else {
            return Ok(());
        };
        let same_epoch = epoch.as_deref() == Some(stored.epoch.as_str());
        if same_epoch && stored.lost_after(last_id) {
            fanout.skip_to(key, stored.first_held.unwrap_or(last_id + 1));
        }
        for event in &stored.events {
            self.deliver(key, &stored.epoch, event);
        }
        Ok(())
    }

    /// A live (or caught-up) event for this node's subscribers of `key`.
    fn deliver(&self, key: &str, epoch: &str, event: &StoredEvent) {
        let name = (!event.name.is_empty())
            .then(|| EventName::new(event.name.clone()).ok())
            .flatten();
        self.shared
            .fanout
            .deliver(key, epoch, event.id, name.as_ref(), &event.data);
    }

    /// Channels this node forgot: stop following them.
    pub async fn forget(&self, keys: &[String]) {
        match self.is_cluster() {
            true => self.shared.shards.unfollow(keys).await,
            false => self.shared.link.unfollow(keys).await,
        }
    }
}

/// A fresh epoch: random, so a Redis that lost a channel never gives it the old one again.
fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}
