//! The subscriber's side: a [`Subscription`] is its replay, then (unless its channel has
//! finished) its live queue and how it is told to stop ([`EndSignal`]), turned into SSE
//! output by [`Subscription::into_stream`].
//!
//! A live subscription's [`Registration`] unregisters it when the stream is dropped, however
//! it ended, exactly once; it holds only a `Weak` to the channel, so a stream that outlives a
//! removed channel never brings it back. A subscription to a finished channel has no
//! registration at all: its stream ends after its replay.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use futures_util::Stream;
use tokio_util::sync::CancellationToken;

use super::Channel;
use super::queue::Queue;
use crate::sse::{CloseReason, Frame, Out, names};
use crate::sync::lock;

/// How a subscriber is told to stop: the reason, and a token for "stop now, skip the queue".
#[derive(Debug, Default)]
pub(super) struct EndSignal {
    pub(super) reason: Mutex<Option<CloseReason>>,
    pub(super) now: CancellationToken,
}

impl EndSignal {
    pub(super) fn close(&self, reason: CloseReason, immediately: bool) {
        lock(&self.reason).get_or_insert(reason);
        if immediately {
            self.now.cancel();
        }
    }
}

/// Unregisters the subscriber when its stream is dropped, however it ended.
#[derive(Debug)]
struct Registration {
    channel: Weak<Channel>,
    subscriber_id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.upgrade() {
            let last = lock(&channel.state).leave(self.subscriber_id);
            // Told outside the lock: the hook may take its time.
            if last && let Some((key, hook)) = &channel.idle {
                (hook.0)(key);
            }
        }
    }
}

/// A subscription: replay first, then queued live events, then the reason it ended.
#[derive(Debug)]
pub struct Subscription {
    /// The last id the subscriber is considered to have (for the first frame's `id:`).
    pub cursor: u64,
    replay: Vec<Bytes>,
    /// Live events up to this id were already in the replay (a replay read from Redis after
    /// registering may overlap the first live events): they are dropped, not sent twice.
    sent_through: u64,
    sent: Arc<AtomicU64>,
    /// `None` on a finished channel: nothing live follows the replay.
    live: Option<Live>,
}

/// A registered subscriber's live part: its queue, its end signal, and the registration
/// that lets go of its place in the channel.
#[derive(Debug)]
pub(super) struct Live {
    queue: Arc<Queue>,
    end: Arc<EndSignal>,
    _registration: Registration,
}

impl Live {
    /// The live part of subscriber `subscriber_id`, registered in `channel`.
    pub(super) fn new(
        channel: &Arc<Channel>,
        subscriber_id: u64,
        queue: Arc<Queue>,
        end: Arc<EndSignal>,
    ) -> Self {
        Self {
            queue,
            end,
            _registration: Registration {
                channel: Arc::downgrade(channel),
                subscriber_id,
            },
        }
    }
}

impl Subscription {
    /// `sent` counts the channel's frames written to subscribers.
    pub(super) fn new(
        cursor: u64,
        replay: Vec<Bytes>,
        sent: Arc<AtomicU64>,
        live: Option<Live>,
    ) -> Self {
        Self {
            cursor,
            replay,
            sent_through: 0,
            sent,
            live,
        }
    }

    /// The same live registration with a replay collected elsewhere (from Redis, after the
    /// registration): `cursor` as for [`Subscription::cursor`], and live events up to
    /// `sent_through` dropped because the replay holds them.
    pub(crate) fn with_replay(self, cursor: u64, replay: Vec<Bytes>, sent_through: u64) -> Self {
        Self {
            cursor,
            replay,
            sent_through,
            ..self
        }
    }

    /// Only `replay`, then the end, with no channel here: one that finished elsewhere (an
    /// order that is done, numbered by Redis).
    pub(crate) fn replay_only(cursor: u64, replay: Vec<Bytes>) -> Self {
        Self::new(cursor, replay, Arc::default(), None)
    }

    /// Frames to send before live ones (a `reset` first when events were lost).
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// The subscription as SSE output: replay, live events, then a last event saying why it
    /// ended (`replaced`, `bye`) when the client should know, and the close reason. On a
    /// finished channel it ends with `end` right after the replay.
    pub fn into_stream(self) -> impl Stream<Item = Out> + Send + 'static {
        async_stream::stream! {
            let Subscription { replay, sent, live, mut sent_through, .. } = self;
            for frame in replay {
                sent.fetch_add(1, Ordering::Relaxed);
                yield Out::Send(frame);
            }
            // Held to the end of the stream, so the registration lets go only then.
            let reason = match &live {
                None => CloseReason::End,
                Some(Live { queue, end, .. }) => {
                    // Made once, not per event (see `sse::drive`).
                    let stop = end.now.clone().cancelled_owned();
                    let mut stop = std::pin::pin!(stop);
                    loop {
                        tokio::select! {
                            biased;
                            _ = &mut stop => break,
                            frame = queue.recv() => match frame {
                                Some((Some(id), _)) if id <= sent_through => {}
                                Some((id, frame)) => {
                                    // A frame outside the numbering (a reset: ids started
                                    // over) means every later id is new.
                                    sent_through = id.unwrap_or(0);
                                    sent.fetch_add(1, Ordering::Relaxed);
                                    yield Out::Send(frame);
                                }
                                None => break,
                            },
                        }
                    }
                    lock(&end.reason).unwrap_or(CloseReason::End)
                }
            };
            if let Some(frame) = ending_frame(reason) {
                yield Out::Send(frame);
            }
            yield Out::Close(reason);
        }
    }
}

/// The last event a subscriber gets when the server ends its stream on purpose.
fn ending_frame(reason: CloseReason) -> Option<Bytes> {
    let (name, text) = match reason {
        CloseReason::Replaced => (
            names::REPLACED,
            "another connection subscribed with this id",
        ),
        CloseReason::Bye => (names::BYE, "the session was closed by the server"),
        _ => return None,
    };
    Some(Frame::new().event(&name).data(text).finish())
}
