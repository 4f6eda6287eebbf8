//! The subscriber's side: a [`Subscription`] is its replay, then (unless its channel has
//! finished) its live queue, which also says when and why it stops, turned into SSE output
//! by [`Subscription::into_stream`] ([`SubscriptionStream`]).
//!
//! A live subscription's [`Registration`] unregisters it when the stream is dropped, however
//! it ended, exactly once; it holds only a `Weak` to the channel, so a stream that outlives a
//! removed channel never brings it back. A subscription to a finished channel has no
//! registration at all: its stream ends after its replay.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;

use super::channel::Member;
use super::{Channel, Mark, Replay};
use crate::sse::{CloseReason, Frame, Out, names};
use crate::sync::lock;

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
    replay: Replay,
    /// Live events up to this id were already in the replay (a replay read from Redis after
    /// registering may overlap the first live events): they are dropped, not sent twice.
    sent_through: u64,
    sent: Arc<AtomicU64>,
    /// `None` on a finished channel: nothing live follows the replay.
    live: Option<Live>,
}

/// A registered subscriber's live part: what it shares with the channel (its queue, which
/// also says when and why it stops), and the registration that lets go of its place there.
#[derive(Debug)]
pub(super) struct Live {
    member: Arc<Member>,
    _registration: Registration,
}

impl Live {
    /// The live part of subscriber `subscriber_id`, registered in `channel`.
    pub(super) fn new(channel: &Arc<Channel>, subscriber_id: u64, member: Arc<Member>) -> Self {
        Self {
            member,
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
        replay: Replay,
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
    pub(crate) fn with_replay(self, cursor: u64, replay: Replay, sent_through: u64) -> Self {
        Self {
            cursor,
            replay,
            sent_through,
            ..self
        }
    }

    /// Only `replay`, then the end, with no channel here: one that finished elsewhere (an
    /// order that is done, numbered by Redis).
    pub(crate) fn replay_only(cursor: u64, replay: Replay) -> Self {
        Self::new(cursor, replay, Arc::default(), None)
    }

    /// Frames to send before live ones (a `reset` first when events were lost).
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// The subscription as SSE output: replay, live events, then a last event saying why it
    /// ended (`replaced`, `bye`) when the client should know, and the close reason. On a
    /// finished channel it ends with `end` right after the replay.
    pub fn into_stream(self) -> SubscriptionStream {
        let Subscription {
            replay,
            sent_through,
            sent,
            live,
            ..
        } = self;
        SubscriptionStream {
            replay: (!replay.is_empty()).then(|| Box::new(replay.into_iter())),
            sent_through,
            sent,
            live,
            step: Step::Replay,
        }
    }
}

/// A [`Subscription`] as SSE output (see [`Subscription::into_stream`]). It holds the
/// subscriber's registration until it is dropped, or has given its last item.
#[derive(Debug)]
pub struct SubscriptionStream {
    /// `None` once sent, or when there was none: a sent replay's buffer is not kept for the
    /// stream's life, and each subscription of a stream holds 8 bytes for it, not 32.
    replay: Option<Box<std::vec::IntoIter<(Mark, Bytes)>>>,
    sent_through: u64,
    sent: Arc<AtomicU64>,
    live: Option<Live>,
    step: Step,
}

/// Where a [`SubscriptionStream`] is.
#[derive(Debug, Clone, Copy)]
enum Step {
    Replay,
    Live,
    Ended(Ending),
}

/// The end of a subscription's output, once its frames stopped: the last event its reason
/// has (`replaced`, `bye`), then `Out::Close`, then nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The ending frame (if this reason has one) comes next.
    Frame(CloseReason),
    /// `Out::Close` comes next.
    Close(CloseReason),
    Done,
}

impl Ending {
    /// The next item of the end; `None` once it is done.
    pub(crate) fn next(&mut self) -> Option<Out> {
        loop {
            match *self {
                Ending::Frame(reason) => {
                    *self = Ending::Close(reason);
                    if let Some(frame) = ending_frame(reason) {
                        return Some(Out::Send(frame));
                    }
                }
                Ending::Close(reason) => {
                    *self = Ending::Done;
                    return Some(Out::Close(reason));
                }
                Ending::Done => return None,
            }
        }
    }

    fn reason(self) -> Option<CloseReason> {
        match self {
            Ending::Frame(reason) | Ending::Close(reason) => Some(reason),
            Ending::Done => None,
        }
    }
}

impl SubscriptionStream {
    /// The next frame — replay first, then live events — with its [`Mark`], counted as sent;
    /// `None` once the subscription ended, and from then on [`SubscriptionStream::ended`]
    /// says why. A live event already sent in the replay is skipped, not sent twice.
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Mark, Bytes)>> {
        loop {
            match self.step {
                Step::Replay => match self.replay.as_mut().and_then(|replay| replay.next()) {
                    Some(frame) => return self.send(frame),
                    None => {
                        self.replay = None;
                        self.step = match self.live {
                            Some(_) => Step::Live,
                            None => Step::Ended(Ending::Frame(CloseReason::End)),
                        };
                    }
                },
                Step::Live => {
                    let Some(Live { member, .. }) = &self.live else {
                        unreachable!("only a live subscription reads its queue");
                    };
                    let queue = &member.queue;
                    match ready!(queue.poll_recv(cx)) {
                        Some((mark, frame)) => {
                            match mark {
                                Mark::Reset { restart: true, .. } => {
                                    // The ids started over: every later id is new.
                                    self.sent_through = 0;
                                }
                                _ if mark.cursor() <= self.sent_through => continue,
                                _ => self.sent_through = mark.cursor(),
                            }
                            return self.send((mark, frame));
                        }
                        None => {
                            let reason = queue.reason().unwrap_or(CloseReason::End);
                            self.step = Step::Ended(Ending::Frame(reason));
                        }
                    }
                }
                Step::Ended(_) => return Poll::Ready(None),
            }
        }
    }

    /// Why the subscription ended, once [`SubscriptionStream::poll_frame`] gave `None`.
    pub fn ended(&self) -> Option<CloseReason> {
        match self.step {
            Step::Ended(ending) => ending.reason(),
            Step::Replay | Step::Live => None,
        }
    }

    fn send(&self, frame: (Mark, Bytes)) -> Poll<Option<(Mark, Bytes)>> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Some(frame))
    }
}

impl Stream for SubscriptionStream {
    type Item = Out;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        let this = self.get_mut();
        loop {
            match this.step {
                Step::Replay | Step::Live => {
                    if let Some((_, frame)) = ready!(this.poll_frame(cx)) {
                        return Poll::Ready(Some(Out::Send(frame)));
                    }
                }
                Step::Ended(ref mut ending) => match ending.next() {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => {
                        // Past its last item: the registration lets go now, as when dropped.
                        this.live = None;
                        return Poll::Ready(None);
                    }
                },
            }
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
