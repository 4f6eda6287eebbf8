//! Whatever is published to a topic — any data, and any event name the API accepts — reaches
//! a subscriber, live and replayed after `Last-Event-ID: 0`, as exactly that event: the data
//! with its line breaks made `\n` (the one change SSE allows), the name intact, the id the
//! hub gave it, and never a field or event the data smuggled in (`id:`, `event:`, `retry:`,
//! a comment, a blank line that ends the event early). This drives the real publish path
//! (hub, fan-out, ring, queue, `Frame`) and reads it with the spec parser.
//!
//! Input: up to 16 events separated by 0xFF; in each, the bytes before a 0xFE are its event
//! name (none without one). Neither byte occurs in UTF-8, so seeds stay readable. Each part
//! is taken as UTF-8, lossily: the HTTP layer accepts only UTF-8 (a text body, a JSON string).

#![no_main]

use std::pin::Pin;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use futures_util::{FutureExt, Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use sselab::pubsub::fanout::{Exclusive, Fanout, Limits, SubscriberMeta};
use sselab::pubsub::hub::{Hub, HubConfig};
use sselab::sse::{EventName, Out};
use sselab_fuzz::{delivered, parse_stream, split_once};
use tokio::runtime::Runtime;

/// Events per input: enough for one event's injection to show in the next.
const MAX_EVENTS: usize = 16;
const TOPIC: &str = "fuzz";

struct Expected {
    id: u64,
    event: String,
    data: String,
}

fuzz_target!(|input: &[u8]| runtime().block_on(round_trip(input)));

/// Publish what `input` says, then read it back from a live and a replaying subscriber.
async fn round_trip(input: &[u8]) {
    let hub = Hub::new(
        // Room for every event, in the ring and in the queue: nothing is cut as slow.
        Fanout::new(Limits {
            replay: MAX_EVENTS,
            queue: MAX_EVENTS,
        }),
        HubConfig {
            linger: Duration::from_secs(60),
            max_sessions: 1,
            max_topics: 1,
            same_id: Exclusive::Replace,
        },
    );
    let mut live = stream(&hub, None).await;
    let mut expected = Vec::new();
    for part in input.split(|&byte| byte == 0xFF).take(MAX_EVENTS) {
        let (name, data) = match split_once(part, 0xFE) {
            (name, Some(data)) => (event_name(name), data),
            (data, None) => (None, data),
        };
        let data = String::from_utf8_lossy(data);
        let published = hub
            .publish_topic(TOPIC, name.as_ref(), &data)
            .await
            .expect("the topic exists: it has a subscriber");
        expected.push(Expected {
            id: published.id,
            event: name.map_or_else(|| "message".to_string(), |n| n.as_str().to_string()),
            data: delivered(&data),
        });
    }
    let mut replayed = stream(&hub, Some(0)).await;
    for (who, subscriber) in [("live", &mut live), ("replayed", &mut replayed)] {
        let (events, parser) = parse_stream(&ready_bytes(subscriber));
        assert_eq!(
            events.len(),
            expected.len(),
            "{who}: events were added or lost"
        );
        for (event, expected) in events.iter().zip(&expected) {
            assert_eq!(event.id, expected.id.to_string(), "{who}: an injected id");
            assert_eq!(event.event, expected.event, "{who}: an injected event name");
            assert_eq!(event.data, expected.data, "{who}: the data changed");
            assert_eq!(event.retry, None, "{who}: an injected retry");
        }
        assert_eq!(parser.comments(), 0, "{who}: an injected comment");
    }
}

/// One runtime for every input: the hub's calls are async (a Redis bus may wait), though the
/// in-process one used here answers at once.
fn runtime() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    });
    &RUNTIME
}

/// The name, if `EventName` takes it (a refused one is published without a name, as the
/// HTTP layer never gets that far). It must refuse exactly what its rule says: empty, a line
/// break (which would end the `event:` line and start a field of the data's choosing), or a
/// colon.
fn event_name(bytes: &[u8]) -> Option<EventName> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let refused_by_rule = text.is_empty() || text.contains(['\r', '\n', ':']);
    match EventName::new(text.clone()) {
        Ok(name) => {
            assert!(!refused_by_rule, "accepted the event name {text:?}");
            Some(name)
        }
        Err(reason) => {
            assert!(refused_by_rule, "refused the event name {text:?}: {reason}");
            None
        }
    }
}

type Events = Pin<Box<dyn Stream<Item = Out> + Send>>;

/// A subscriber's stream: live only, or a resume after `last_event_id`.
async fn stream(hub: &Hub, last_event_id: Option<u64>) -> Events {
    let meta = SubscriberMeta {
        protocol: "HTTP/2",
        listener: "https",
        connection_id: 1,
        connected_at: SystemTime::now(),
        drop_transport: None,
    };
    let subscription = hub
        .subscribe_topic(TOPIC, last_event_id, meta)
        .await
        .expect("subscribe");
    Box::pin(subscription.into_stream())
}

/// Every byte the stream has ready now; it must still be open.
fn ready_bytes(stream: &mut Events) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(item) = stream.next().now_or_never() {
        match item {
            Some(Out::Send(frame)) => bytes.extend_from_slice(&frame),
            Some(Out::Close(reason)) => panic!("the stream closed: {reason:?}"),
            None => panic!("the stream ended"),
        }
    }
    bytes
}
