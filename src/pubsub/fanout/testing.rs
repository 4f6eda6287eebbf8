//! Test helpers for anything built on the fan-out (its own tests, the hub's): a subscriber's
//! meta, and reading a [`Subscription`]'s stream as parsed events without waiting.

use std::pin::Pin;
use std::time::SystemTime;

use futures_util::{FutureExt, Stream, StreamExt};

use super::{SubscriberMeta, Subscription};
use crate::sse::parser::{ParsedEvent, Parser};
use crate::sse::{CloseReason, Out};

pub type Events = Pin<Box<dyn Stream<Item = Out> + Send>>;

pub fn meta() -> SubscriberMeta {
    SubscriberMeta {
        protocol: "HTTP/2",
        listener: "https",
        connection_id: 1,
        connected_at: SystemTime::now(),
        drop_transport: None,
    }
}

pub fn events(subscription: Subscription) -> Events {
    Box::pin(subscription.into_stream())
}

/// Everything the stream has ready now, parsed, and the close reason if it ended.
pub fn ready(stream: &mut Events) -> (Vec<ParsedEvent>, Option<CloseReason>) {
    let mut parser = Parser::new();
    let mut parsed = Vec::new();
    while let Some(item) = stream.next().now_or_never() {
        match item {
            Some(Out::Send(bytes)) => parsed.extend(parser.feed(&bytes)),
            Some(Out::Close(reason)) => return (parsed, Some(reason)),
            None => return (parsed, Some(CloseReason::End)),
        }
    }
    (parsed, None)
}

pub fn ids(events: &[ParsedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.id.parse().expect("numeric id"))
        .collect()
}
