//! The session hub: the seed's `SseUtil` registry done right, plus topics for fan-out.
//!
//! A session is a mailbox keyed by a client-chosen id with one subscriber at a time; a topic
//! has any number. Both are [`super::fanout`] channels, so both number their events, replay
//! after `Last-Event-ID`, and cut slow subscribers the same way. What the hub adds: the
//! session rules — linger after a disconnect, same-id replace or reject, delete with `bye`
//! and a tombstone that answers the browser's reconnect with 204 — and the caps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::bus::{Bus, BusSubscribeError, IfDeleted};
use super::fanout::{
    ChannelInfo, Exclusive, Fanout, Published, StartAt, SubscribeError, SubscriberMeta,
    Subscription,
};
use super::multi::Topics;
use super::redis::{RedisStatus, Unavailable};
use super::tombstones::Tombstones;
use crate::sse::{CloseReason, EventName};

const SESSION: &str = "session:";
const TOPIC: &str = "topic:";
/// How long a deleted session id answers 204 to reconnects.
const DELETED_TTL: Duration = Duration::from_secs(3600);
/// How often idle sessions and topics are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// How long a disconnected session keeps its ring and accepts posts.
    pub linger: Duration,
    pub max_sessions: usize,
    pub max_topics: usize,
    pub same_id: Exclusive,
}

/// Which of the hub's caps is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Sessions,
    Topics,
}

impl Cap {
    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Cap::Sessions => "--max-sessions",
            Cap::Topics => "--max-topics",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// Never subscribed, expired, or deleted: `what` is "session" or "topic".
    NotFound { what: &'static str, id: String },
    /// Deleted, and this is a reconnect: 204 stops the browser.
    Gone,
    /// `--same-id reject` and the id is connected.
    Conflict,
    /// `--max-sessions` / `--max-topics` reached.
    Full { cap: Cap, max: usize },
    /// The shared backend (Redis) did not answer: nothing was done; retry later.
    Unavailable(String),
}

impl From<Unavailable> for HubError {
    fn from(e: Unavailable) -> Self {
        Self::Unavailable(e.reason)
    }
}

impl From<BusSubscribeError> for HubError {
    fn from(e: BusSubscribeError) -> Self {
        match e {
            BusSubscribeError::Refused(SubscribeError::Busy) => Self::Conflict,
            BusSubscribeError::Refused(SubscribeError::Finished) => Self::Gone,
            BusSubscribeError::Deleted => Self::Gone,
            BusSubscribeError::Unavailable(e) => e.into(),
        }
    }
}

/// One session as `GET /api/sessions` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub connected: bool,
    pub protocol: Option<&'static str>,
    pub listener: Option<&'static str>,
    pub connection_id: Option<u64>,
    /// RFC 3339, UTC.
    pub connected_at: Option<String>,
    pub last_event_id: u64,
    pub queued: usize,
    pub sent: u64,
    pub dropped: u64,
    pub reconnects: u64,
}

/// One topic as `GET /api/topics` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub subscribers: usize,
    pub last_event_id: u64,
    pub sent: u64,
    pub dropped: u64,
}

/// A cheap clone over the shared hub.
#[derive(Debug, Clone)]
pub struct Hub {
    shared: Arc<HubShared>,
}

#[derive(Debug)]
struct HubShared {
    bus: Bus,
    config: HubConfig,
    deleted: Tombstones,
}

impl Hub {
    /// A hub over `bus` (a [`Fanout`] alone is the in-process bus).
    pub fn new(bus: impl Into<Bus>, config: HubConfig) -> Self {
        let bus = bus.into();
        if let (Some(redis), Exclusive::Reject) = (bus.redis(), config.same_id) {
            redis.release_sessions_when_idle();
        }
        Self {
            shared: Arc::new(HubShared {
                deleted: Tombstones::new(config.max_sessions.max(1), DELETED_TTL),
                bus,
                config,
            }),
        }
    }

    /// This node's fan-out: its own subscribers (and, in-process, every channel).
    fn fanout(&self) -> &Fanout {
        self.shared.bus.local()
    }

    fn bus(&self) -> &Bus {
        &self.shared.bus
    }

    /// The Redis backend's state, when channels are shared through Redis.
    pub fn redis_status(&self) -> Option<RedisStatus> {
        self.bus().redis_status()
    }

    /// A channel that lingered past its time is gone, even if the sweeper has not run yet.
    fn live_channel(&self, key: &str) -> Option<ChannelInfo> {
        let info = self.fanout().info(key)?;
        let expired = info
            .idle_since
            .is_some_and(|since| since.elapsed() >= self.shared.config.linger);
        if expired {
            self.fanout().remove(key, CloseReason::End);
            if let Some(redis) = self.bus().redis() {
                // Redis stops sending it here too (the sweeper does the same for the rest).
                let (redis, keys) = (redis.clone(), vec![key.to_string()]);
                tokio::spawn(async move { redis.forget(&keys).await });
            }
            return None;
        }
        Some(info)
    }

    /// Subscribe to a session. `last_event_id` is the browser's `Last-Event-ID`: with it this
    /// is a reconnect (replay after it; 204 for a deleted session); without it, a new start
    /// (everything still held is delivered, and a deleted id starts afresh).
    pub async fn subscribe_session(
        &self,
        id: &str,
        last_event_id: Option<u64>,
        meta: SubscriberMeta,
    ) -> Result<Subscription, HubError> {
        let key = format!("{SESSION}{id}");
        match last_event_id {
            Some(_) if self.shared.deleted.contains(id) => return Err(HubError::Gone),
            Some(_) => {}
            None => self.shared.deleted.remove(id),
        }
        let exists = self.live_channel(&key).is_some();
        let max = self.shared.config.max_sessions;
        if !exists && self.fanout().count(SESSION) >= max {
            return Err(HubError::Full {
                cap: Cap::Sessions,
                max,
            });
        }
        let from = last_event_id.map_or(StartAt::Start, StartAt::After);
        let if_deleted = match last_event_id {
            Some(_) => IfDeleted::Refuse,
            None => IfDeleted::Forget,
        };
        let subscription = self
            .bus()
            .subscribe(&key, from, meta, self.shared.config.same_id, if_deleted)
            .await?;
        Ok(subscription)
    }

    /// Post to one session; `NotFound` if it was never subscribed or has expired (on any
    /// node, with Redis).
    pub async fn publish_session(
        &self,
        id: &str,
        name: Option<&EventName>,
        data: &str,
    ) -> Result<Published, HubError> {
        let key = format!("{SESSION}{id}");
        let not_found = || HubError::NotFound {
            what: "session",
            id: id.to_string(),
        };
        if !self.bus().is_shared() {
            self.live_channel(&key).ok_or_else(not_found)?;
        }
        self.bus()
            .publish(&key, name, data, true)
            .await?
            .ok_or_else(not_found)
    }

    /// Post to every session (on every node, with Redis); returns how many got it.
    pub async fn broadcast(&self, name: Option<&EventName>, data: &str) -> Result<usize, HubError> {
        let mut sessions = 0;
        let shared = self.bus().is_shared();
        for key in self.bus().keys_everywhere(SESSION).await? {
            // In-process, a session past its linger is gone even before the sweeper ran;
            // with Redis, one that expired there is skipped by the publish itself.
            if (shared || self.live_channel(&key).is_some())
                && self.bus().publish(&key, name, data, true).await?.is_some()
            {
                sessions += 1;
            }
        }
        Ok(sessions)
    }

    /// Send `bye`, close the stream and forget the session; its reconnects get 204 (on every
    /// node, with Redis).
    pub async fn delete_session(&self, id: &str) -> Result<(), HubError> {
        let key = format!("{SESSION}{id}");
        let here = self.live_channel(&key).is_some();
        let elsewhere = self.bus().delete_elsewhere(&key, DELETED_TTL).await?;
        if !here && !elsewhere {
            return Err(HubError::NotFound {
                what: "session",
                id: id.to_string(),
            });
        }
        self.shared.deleted.insert(id);
        self.bus().remove(&key, CloseReason::Bye).await;
        tracing::info!(
            session = id,
            "session deleted: bye sent, reconnects get 204"
        );
        Ok(())
    }

    pub fn session(&self, id: &str) -> Option<SessionInfo> {
        let info = self.live_channel(&format!("{SESSION}{id}"))?;
        Some(session_info(id, &info))
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.fanout()
            .keys(SESSION)
            .iter()
            .filter_map(|key| {
                let info = self.live_channel(key)?;
                Some(session_info(&key[SESSION.len()..], &info))
            })
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.fanout().count(SESSION)
    }

    pub fn topic_count(&self) -> usize {
        self.fanout().count(TOPIC)
    }

    /// Subscribe to a topic: live events, or a replay after `Last-Event-ID`.
    pub async fn subscribe_topic(
        &self,
        name: &str,
        last_event_id: Option<u64>,
        meta: SubscriberMeta,
    ) -> Result<Subscription, HubError> {
        let key = self.topic_key(name)?;
        let from = last_event_id.map_or(StartAt::Live, StartAt::After);
        let subscription = self
            .bus()
            .subscribe(&key, from, meta, Exclusive::Shared, IfDeleted::Ignore)
            .await?;
        Ok(subscription)
    }

    /// Subscribe to several topics for one stream, each from its own place: `from[i]` is where
    /// `names[i]` resumes (`None`: live). All or nothing: when one is refused (`--max-topics`,
    /// Redis away), the others let go at once.
    pub async fn subscribe_topics(
        &self,
        names: &[EventName],
        from: &[Option<u64>],
        meta: SubscriberMeta,
    ) -> Result<Topics, HubError> {
        let each = names.iter().zip(from).map(|(name, from)| {
            let meta = meta.clone();
            async move {
                let subscription = self.subscribe_topic(name.as_str(), *from, meta).await?;
                Ok::<_, HubError>((name.clone(), subscription))
            }
        });
        let topics = futures_util::future::try_join_all(each).await?;
        Ok(Topics::new(topics))
    }

    /// Publish to a topic (created if needed, so late subscribers can replay).
    pub async fn publish_topic(
        &self,
        name: &str,
        event: Option<&EventName>,
        data: &str,
    ) -> Result<Published, HubError> {
        let key = self.topic_key(name)?;
        self.bus()
            .publish(&key, event, data, false)
            .await?
            .ok_or_else(|| HubError::NotFound {
                what: "topic",
                id: name.to_string(),
            })
    }

    pub fn topics(&self) -> Vec<TopicInfo> {
        self.fanout()
            .keys(TOPIC)
            .iter()
            .filter_map(|key| {
                let info = self.live_channel(key)?;
                Some(TopicInfo {
                    name: key[TOPIC.len()..].to_string(),
                    subscribers: info.subscriber_count,
                    last_event_id: info.last_id,
                    sent: info.sent,
                    dropped: info.dropped,
                })
            })
            .collect()
    }

    /// The topic's channel key, created when missing and the cap allows.
    fn topic_key(&self, name: &str) -> Result<String, HubError> {
        let key = format!("{TOPIC}{name}");
        if self.live_channel(&key).is_none() {
            let max = self.shared.config.max_topics;
            if self.fanout().count(TOPIC) >= max {
                return Err(HubError::Full {
                    cap: Cap::Topics,
                    max,
                });
            }
            self.fanout().ensure(&key);
        }
        Ok(key)
    }
}

fn session_info(id: &str, info: &ChannelInfo) -> SessionInfo {
    let subscriber = info.first_subscriber.as_ref();
    SessionInfo {
        id: id.to_string(),
        connected: subscriber.is_some(),
        protocol: subscriber.map(|s| s.meta.protocol),
        listener: subscriber.map(|s| s.meta.listener),
        connection_id: subscriber.map(|s| s.meta.connection_id),
        connected_at: subscriber.map(|s| rfc3339(s.meta.connected_at)),
        last_event_id: info.last_id,
        queued: subscriber.map_or(0, |s| s.queued),
        sent: info.sent,
        dropped: info.dropped,
        reconnects: info.reconnects,
    }
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

mod sweeper;
#[cfg(test)]
mod tests;
