//! Many topics on one stream: a page that follows ten feeds holds one stream (one of the six
//! HTTP/1.1 connections, not ten), and a reconnect resumes **every** topic from its own last
//! event — in-process, or on any node through Redis.
//!
//! A [`Topics`] is one ordinary topic [`Subscription`] per topic (so each keeps its own replay,
//! `reset` and slow-subscriber rules) read as one stream ([`TopicsStream`]) that rewrites each
//! frame on its way out:
//!
//! - an event of topic `a` is `event: topic:a` (published without a name, or named `message`)
//!   or `event: topic:a:NAME` (published as `NAME`), with its `data:` lines copied as they
//!   were encoded. Neither an event name nor a topic name may hold a colon, so these types
//!   never equal one of sselab's own events (`connected`, `reset`, `refused`…) nor each other;
//! - a topic's `reset` is sselab's `event: reset`, its JSON naming the `topic`;
//! - every frame's `id:` is the stream's [`cursor`]: every topic's last id, which a reconnect
//!   hands back as `Last-Event-ID`.
//!
//! Events of one topic keep their order; across topics there is none. When any topic's
//! subscription ends (cut as `slow`), the whole stream ends with it, and the reconnect resumes
//! every topic where it was. What it deliberately does not do: merge topics into one
//! numbering (each stays numbered on its own, which is what lets any node resume it).

pub mod cursor;
mod stream;
#[cfg(test)]
mod tests;

pub use cursor::{BadCursor, Cursor};
pub use stream::TopicsStream;

use super::fanout::Subscription;
use crate::sse::EventName;

/// The most topics one stream may follow (`--max-topics-per-stream` stays within it): the
/// most a cursor holds.
pub const MAX_TOPICS_PER_STREAM: usize = cursor::MAX_ENTRIES;

/// The first part of every topic event's type: `topic:NAME` or `topic:NAME:EVENT`.
pub const TOPIC_EVENT_PREFIX: &str = "topic:";

/// Several topic subscriptions, to be read as one stream.
#[derive(Debug)]
pub struct Topics {
    /// In name order, as the cursor holds them.
    topics: Vec<(EventName, Subscription)>,
}

/// Where one topic of a [`Topics`] starts, for the stream's first event.
#[derive(Debug, Clone, Copy)]
pub struct TopicStart<'a> {
    pub name: &'a str,
    /// The last id the subscriber is considered to have.
    pub cursor: u64,
    /// Frames sent before its live events (a `reset` first when some were lost).
    pub replayed: usize,
}

impl Topics {
    /// The topics, each with its subscription. A name is an [`EventName`] (no colon, no line
    /// break), so it can stand in an event type.
    pub fn new(mut topics: Vec<(EventName, Subscription)>) -> Self {
        topics.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Self { topics }
    }

    /// The cursor before anything is sent: the first frame's `id:`, so that the first
    /// reconnect already resumes every topic.
    pub fn cursor(&self) -> String {
        cursor::encode(&entries(&self.topics))
    }

    /// Every topic's name, cursor and replay, in name order.
    pub fn starts(&self) -> impl Iterator<Item = TopicStart<'_>> {
        self.topics.iter().map(|(name, subscription)| TopicStart {
            name: name.as_str(),
            cursor: subscription.cursor,
            replayed: subscription.replay_len(),
        })
    }

    /// Frames sent before live ones, over every topic.
    pub fn replay_len(&self) -> usize {
        self.topics.iter().map(|(_, s)| s.replay_len()).sum()
    }

    /// The topics as one SSE stream (see the module doc).
    pub fn into_stream(self) -> TopicsStream {
        TopicsStream::new(self.topics)
    }
}

/// (tag, cursor) of every topic, in their order: what the cursor holds.
fn entries(topics: &[(EventName, Subscription)]) -> Vec<(u16, u64)> {
    let tagged = topics.iter();
    tagged
        .map(|(name, s)| (cursor::tag(name.as_str()), s.cursor))
        .collect()
}
