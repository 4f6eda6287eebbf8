//! The channel boundary: where events are numbered, kept for replay and delivered. Two
//! backends behind one API — `publish`, `subscribe`, and the local view — so the hub and the
//! handlers never ask which one runs.
//!
//! - [`Bus::InProcess`]: the [`Fanout`] alone, as sselab always was (the default): one
//!   process numbers, keeps and delivers everything.
//! - [`Bus::Redis`]: Redis numbers and keeps each channel's events, cluster-wide; this
//!   node's [`Fanout`] holds only its own subscribers and is fed by [`RedisBus`].

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fanout::Subscription;
use super::fanout::{Exclusive, Fanout, Published, StartAt, SubscribeError, SubscriberMeta};
pub use super::redis::IfDeleted;
use super::redis::{RedisBus, RedisStatus, RedisSubscribeError, Unavailable};
use crate::sse::{CloseReason, EventName};

#[derive(Debug, Clone)]
pub enum Bus {
    InProcess(Fanout),
    /// `local` is the same fan-out the Redis backend feeds.
    Redis {
        local: Fanout,
        redis: RedisBus,
    },
}

/// Why a subscribe through the bus failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusSubscribeError {
    Refused(SubscribeError),
    /// A reconnect to a session deleted on another node.
    Deleted,
    Unavailable(Unavailable),
}

impl From<RedisSubscribeError> for BusSubscribeError {
    fn from(e: RedisSubscribeError) -> Self {
        match e {
            RedisSubscribeError::Refused(e) => Self::Refused(e),
            RedisSubscribeError::Deleted | RedisSubscribeError::NotFound => Self::Deleted,
            RedisSubscribeError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

impl From<Fanout> for Bus {
    fn from(fanout: Fanout) -> Self {
        Self::InProcess(fanout)
    }
}

impl Bus {
    /// This node's fan-out: its subscribers, counts and listings.
    pub fn local(&self) -> &Fanout {
        match self {
            Self::InProcess(fanout) | Self::Redis { local: fanout, .. } => fanout,
        }
    }

    /// Whether channels are shared with other nodes.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis { .. })
    }

    /// The Redis backend, when channels are shared through it.
    pub fn redis(&self) -> Option<&RedisBus> {
        match self {
            Self::InProcess(_) => None,
            Self::Redis { redis, .. } => Some(redis),
        }
    }

    pub fn redis_status(&self) -> Option<RedisStatus> {
        match self {
            Self::InProcess(_) => None,
            Self::Redis { redis, .. } => Some(redis.status()),
        }
    }

    /// Start what the backend runs beside the requests (Redis: its pub/sub link), until
    /// `stop`.
    pub fn spawn(&self, stop: CancellationToken) {
        if let Self::Redis { redis, .. } = self {
            redis.spawn_link(stop);
        }
    }

    /// Publish to `key`. `Ok(None)`: the channel does not exist (in-process: not here or
    /// finished; Redis: `must_exist` and not in Redis).
    pub async fn publish(
        &self,
        key: &str,
        name: Option<&EventName>,
        data: &str,
        must_exist: bool,
    ) -> Result<Option<Published>, Unavailable> {
        match self {
            Self::InProcess(fanout) => Ok(fanout.publish(key, name, data)),
            Self::Redis { redis, .. } => redis.publish(key, name, data, must_exist).await,
        }
    }

    /// Subscribe to `key` from `from`, creating the channel when missing. `if_deleted` says
    /// what a deletion on another node means (in-process, the hub's own tombstones do).
    pub async fn subscribe(
        &self,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
        exclusive: Exclusive,
        if_deleted: IfDeleted,
    ) -> Result<Subscription, BusSubscribeError> {
        match self {
            Self::InProcess(fanout) => fanout
                .subscribe(key, from, meta, exclusive)
                .map_err(BusSubscribeError::Refused),
            Self::Redis { redis, .. } => redis
                .subscribe(key, from, meta, exclusive, if_deleted, true)
                .await
                .map_err(BusSubscribeError::from),
        }
    }

    /// Subscribe (shared) to `key` only if it exists (an order): `Ok(None)` when it does
    /// not, so a channel forgotten meanwhile is never made again, empty.
    pub async fn subscribe_existing(
        &self,
        key: &str,
        from: StartAt,
        meta: SubscriberMeta,
    ) -> Result<Option<Subscription>, BusSubscribeError> {
        match self {
            Self::InProcess(fanout) => fanout
                .subscribe_existing(key, from, meta, Exclusive::Shared)
                .transpose()
                .map_err(BusSubscribeError::Refused),
            Self::Redis { redis, .. } => {
                let shared = Exclusive::Shared;
                match redis
                    .subscribe(key, from, meta, shared, IfDeleted::Ignore, false)
                    .await
                {
                    Ok(subscription) => Ok(Some(subscription)),
                    Err(RedisSubscribeError::NotFound) => Ok(None),
                    Err(other) => Err(other.into()),
                }
            }
        }
    }

    /// The channel ended (an order that is done): its subscribers everywhere end after its
    /// last event, and nobody follows it live again.
    pub async fn finish(&self, key: &str) -> Result<(), Unavailable> {
        match self {
            Self::InProcess(fanout) => {
                fanout.close(key, CloseReason::End, true);
                Ok(())
            }
            Self::Redis { redis, .. } => redis.finish(key).await.map(drop),
        }
    }

    /// The data of the last event kept for `key` in the whole cluster, when this node has no
    /// better record of it (Redis only; in-process there is no other node).
    pub async fn last_data_elsewhere(&self, key: &str) -> Result<Option<String>, Unavailable> {
        match self {
            Self::InProcess(_) => Ok(None),
            Self::Redis { redis, .. } => redis.last_data(key).await,
        }
    }

    /// What ids made on this node start with, so they are unique among nodes ("" alone).
    pub fn node_tag(&self) -> Option<&str> {
        self.redis().map(RedisBus::node_tag)
    }

    /// Whether `key` exists for the whole cluster (Redis: and keep it from expiring).
    /// In-process, the local fan-out is the whole cluster.
    pub async fn exists(&self, key: &str) -> Result<bool, Unavailable> {
        match self {
            Self::InProcess(fanout) => Ok(fanout.exists(key)),
            Self::Redis { redis, .. } => redis.touch(key).await,
        }
    }

    /// Delete `key` on every other node (Redis: forget it there, keep a tombstone for
    /// `tombstone`, end its subscribers with `bye`). Gives whether another node may have had
    /// it; in-process there is no other node.
    pub async fn delete_elsewhere(
        &self,
        key: &str,
        tombstone: Duration,
    ) -> Result<bool, Unavailable> {
        match self {
            Self::InProcess(_) => Ok(false),
            Self::Redis { redis, .. } => redis.delete(key, tombstone).await,
        }
    }

    /// Forget `key` here: its subscribers end with `reason` (after their queue); Redis stops
    /// sending it here.
    pub async fn remove(&self, key: &str, reason: CloseReason) -> bool {
        let removed = self.local().remove(key, reason);
        if let Self::Redis { redis, .. } = self {
            redis.forget(&[key.to_string()]).await;
        }
        removed
    }

    /// Every channel whose key starts with `prefix`, in the whole cluster (in-process: here).
    pub async fn keys_everywhere(&self, prefix: &str) -> Result<Vec<String>, Unavailable> {
        match self {
            Self::InProcess(fanout) => Ok(fanout.keys(prefix)),
            Self::Redis { redis, .. } => redis.keys(prefix).await,
        }
    }

    /// Forget local channels under `prefix` idle for `linger`; Redis stops sending them here.
    pub async fn sweep_idle(&self, prefix: &str, linger: Duration) -> Vec<String> {
        let swept = self.local().sweep_idle(prefix, linger);
        if let Self::Redis { redis, .. } = self {
            redis.forget(&swept).await;
        }
        swept
    }
}
