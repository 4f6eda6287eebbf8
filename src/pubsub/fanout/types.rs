//! The fan-out's vocabulary: what callers pass in (limits, where to start, the same-id
//! policy, who subscribes) and what they get back (snapshots, publish results, refusals).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use tokio::time::Instant;

/// How much a channel keeps and a subscriber may fall behind.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events kept per channel for `Last-Event-ID` replay.
    pub replay: usize,
    /// Events queued per subscriber before it is cut as `slow`.
    pub queue: usize,
}

/// What a subscriber's frame is, besides its bytes: the stream that carries many topics
/// rewrites each frame with its topic and the stream's cursor, so it must know an event of
/// the channel's numbering from sselab's own `reset`, and where each leaves the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// An event of the channel's numbering, with its id.
    Event(u64),
    /// `event: reset`: the events after the subscriber's id and up to `cursor` are gone, and
    /// it holds `cursor` from now on (the frame's `id:`). With `restart`, the ids started
    /// over (a new epoch in Redis): every later id is new, whatever came before.
    Reset { cursor: u64, restart: bool },
}

impl Mark {
    /// The id the subscriber holds once it got this frame.
    pub fn cursor(self) -> u64 {
        match self {
            Mark::Event(id) | Mark::Reset { cursor: id, .. } => id,
        }
    }
}

/// Frames a subscriber gets before live ones, each with its [`Mark`].
pub type Replay = Vec<(Mark, Bytes)>;

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only events published from now on.
    Live,
    /// Everything still in the ring (a mailbox read from the start).
    Start,
    /// Everything after this id (`Last-Event-ID`).
    After(u64),
}

/// What to do when a channel that allows one subscriber already has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusive {
    /// Any number of subscribers (topics).
    Shared,
    /// The older subscriber gets `event: replaced` and closes.
    Replace,
    /// The newcomer is refused.
    Reject,
}

/// Who is subscribed, for listings.
#[derive(Debug, Clone)]
pub struct SubscriberMeta {
    pub protocol: &'static str,
    pub listener: &'static str,
    pub connection_id: u64,
    pub connected_at: SystemTime,
    /// Drops the subscriber's transport at once when it is cut as `slow`. A stalled
    /// HTTP/1.1 connection is never polled again, so only closing it frees it.
    pub drop_transport: Option<DropTransport>,
}

/// A callback that closes a subscriber's connection.
#[derive(Clone)]
pub struct DropTransport(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for DropTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DropTransport")
    }
}

#[derive(Debug, Clone)]
pub struct SubscriberInfo {
    pub meta: SubscriberMeta,
    pub queued: usize,
}

/// A snapshot of one channel.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub last_id: u64,
    pub first_held: Option<u64>,
    pub subscriber_count: usize,
    /// The first subscriber (a session's only one), for listings; cheap to read even when
    /// a topic has 100k subscribers.
    pub first_subscriber: Option<SubscriberInfo>,
    /// Events written to subscribers (replayed ones included).
    pub sent: u64,
    /// Events that found a subscriber's queue full (that subscriber was cut as `slow`).
    pub dropped: u64,
    /// Subscribes that resumed from a `Last-Event-ID`.
    pub reconnects: u64,
    /// Since when nobody is subscribed; `None` while someone is.
    pub idle_since: Option<Instant>,
    /// Set once the channel has ended (an order that finished): no more events, and no new
    /// live subscribers (a subscribe gets only what it lacks, then ends).
    pub finished: bool,
}

/// The result of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub id: u64,
    /// Subscribers the event was queued for.
    pub subscribers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// `Exclusive::Reject` and someone is already subscribed.
    Busy,
    /// The channel has finished and the subscriber lacks nothing: it holds the last id, or
    /// asked only for live events.
    Finished,
}

/// A snapshot of [`super::Fanout`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutTotals {
    pub published: u64,
    /// Events sent again to a subscriber that resumed with `Last-Event-ID` (or started at
    /// the beginning of a mailbox).
    pub replayed: u64,
    /// `event: reset` sent because the ring no longer held what was asked for.
    pub resets: u64,
    /// Subscribers cut because their queue was full.
    pub slow: u64,
}
