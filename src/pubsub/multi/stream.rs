//! [`TopicsStream`]: the subscriptions of a [`super::Topics`] read as one SSE stream, each
//! frame rewritten with its topic and the stream's cursor (see the module doc).
//!
//! The topics are polled in turn from the one after the topic that sent last, so a busy topic
//! cannot keep a quiet one waiting; each subscription registers the task's waker with its own
//! queue, so an event on any topic wakes the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

use super::{TOPIC_EVENT_PREFIX, cursor};
use crate::pubsub::fanout::{Ending, Mark, Subscription, SubscriptionStream, split_event};
use crate::sse::{CloseReason, EventName, Frame, Out, names};

/// Many topics as one SSE stream: see [`super::Topics::into_stream`].
#[derive(Debug)]
pub struct TopicsStream {
    /// In name order, as the cursor holds them.
    topics: Vec<Followed>,
    /// (tag, last id) of each topic, in the same order: the cursor.
    entries: Vec<(u16, u64)>,
    /// The topic polled first next time.
    next: usize,
    step: Step,
    /// The cursor's text, written again for each frame.
    id: String,
}

#[derive(Debug)]
struct Followed {
    name: EventName,
    stream: SubscriptionStream,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Running,
    Ended(Ending),
}

impl TopicsStream {
    /// `topics` in name order.
    pub(super) fn new(topics: Vec<(EventName, Subscription)>) -> Self {
        let entries = super::entries(&topics);
        // Not `collect`: it would reuse the larger buffer of `topics` in place, and the stream
        // would keep its slack (about 16 bytes a topic) for its life.
        let mut followed = Vec::with_capacity(topics.len());
        followed.extend(topics.into_iter().map(|(name, subscription)| Followed {
            name,
            stream: subscription.into_stream(),
        }));
        Self {
            topics: followed,
            entries,
            next: 0,
            step: Step::Running,
            id: String::new(),
        }
    }

    /// Topic `at`'s frame as this stream sends it, with the cursor that includes it.
    fn rewrite(&mut self, at: usize, mark: Mark, frame: &Bytes) -> Bytes {
        self.entries[at].1 = mark.cursor();
        self.id.clear();
        cursor::encode_into(&self.entries, &mut self.id);
        let topic = &self.topics[at];
        match mark {
            Mark::Event(_) => event_frame(&self.id, topic.name.as_str(), frame),
            Mark::Reset { .. } => reset_frame(&self.id, topic.name.as_str(), frame),
        }
    }
}

/// `id:` with the cursor, `event: topic:NAME` (with `:EVENT` when the event has its own name),
/// and the event's `data:` lines as they were encoded. The `event:` line is written for each
/// frame rather than kept per topic: a stream of K topics would hold K of them for its life.
fn event_frame(id: &str, topic: &str, frame: &Bytes) -> Bytes {
    let (name, data) = split_event(frame);
    let name = name.filter(|name| *name != "message");
    let extra = name.map_or(0, |name| name.len() + 1);
    let event_line = b"\nevent: ".len() + TOPIC_EVENT_PREFIX.len() + topic.len() + extra + 1;
    let mut out = BytesMut::with_capacity(4 + id.len() + event_line + data.len());
    out.put_slice(b"id: ");
    out.put_slice(id.as_bytes());
    out.put_slice(b"\nevent: ");
    out.put_slice(TOPIC_EVENT_PREFIX.as_bytes());
    out.put_slice(topic.as_bytes());
    if let Some(name) = name {
        out.put_u8(b':');
        out.put_slice(name.as_bytes());
    }
    out.put_u8(b'\n');
    out.put_slice(&data);
    out.freeze()
}

/// sselab's `reset` for one topic: the channel's JSON with the `topic` added.
fn reset_frame(id: &str, topic: &str, frame: &Bytes) -> Bytes {
    let (_, data) = split_event(frame);
    let json = data
        .strip_prefix(b"data: ")
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(json.trim_ascii_end()).ok());
    let mut json = match json {
        Some(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    json.insert("topic".into(), topic.into());
    Frame::new()
        .id_text(id)
        .event(&names::RESET)
        .data(&serde_json::Value::Object(json).to_string())
        .finish()
}

impl Stream for TopicsStream {
    type Item = Out;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        let this = self.get_mut();
        loop {
            match this.step {
                Step::Running => {
                    let count = this.topics.len();
                    let mut ended = None;
                    for turn in 0..count {
                        let at = (this.next + turn) % count;
                        let stream = &mut this.topics[at].stream;
                        match stream.poll_frame(cx) {
                            Poll::Ready(Some((mark, frame))) => {
                                this.next = (at + 1) % count;
                                let frame = this.rewrite(at, mark, &frame);
                                return Poll::Ready(Some(Out::Send(frame)));
                            }
                            Poll::Ready(None) => {
                                ended = Some(stream.ended().unwrap_or(CloseReason::End));
                                break;
                            }
                            Poll::Pending => {}
                        }
                    }
                    match ended {
                        Some(reason) => this.step = Step::Ended(Ending::Frame(reason)),
                        None if count == 0 => {
                            this.step = Step::Ended(Ending::Frame(CloseReason::End));
                        }
                        None => return Poll::Pending,
                    }
                }
                Step::Ended(ref mut ending) => match ending.next() {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => {
                        // Past its last item: every registration lets go now, as when dropped.
                        this.topics.clear();
                        return Poll::Ready(None);
                    }
                },
            }
        }
    }
}
