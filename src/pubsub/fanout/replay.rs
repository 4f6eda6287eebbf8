//! What a subscriber gets before live events: the replay collected from a channel's ring for
//! where it starts ([`StartAt`]), and the `reset` event that says so when the ring no longer
//! holds what was asked for. On a finished channel the replay is all there is, so it holds
//! only what the subscriber lacks: the last event for a first visit, the events after its id
//! for a resume, and nothing (no subscription) for one that already has the last event.
//!
//! It only reads the channel's state; the caller holds the channel's lock and registers the
//! subscriber under it, so nothing falls between the replay and the live events.

use bytes::Bytes;

use super::channel::ChannelState;
use super::{Mark, Replay, StartAt};
use crate::sse::{Frame, names};

impl ChannelState {
    /// The cursor the subscriber starts at, the frames to send it before live events, and
    /// whether the first of them is a `reset`.
    pub(super) fn replay(&self, from: StartAt) -> (u64, Replay, bool) {
        let first_held = self.ring.front().map(|(id, _)| *id);
        let all = || self.events_after(0);
        match from {
            StartAt::Live => (self.last_id, Vec::new(), false),
            StartAt::Start => match first_held {
                Some(first) if first > 1 => (
                    0,
                    [vec![reset_frame(0, first, self.last_id)], all()].concat(),
                    true,
                ),
                _ => (0, all(), false),
            },
            StartAt::After(k) if k > self.last_id => {
                // The client saw ids this channel never gave (it was forgotten and
                // started over): say so, then continue live.
                (
                    k,
                    vec![reset_frame(k, self.last_id + 1, self.last_id)],
                    true,
                )
            }
            StartAt::After(k) => {
                let oldest_needed = k + 1;
                let lost = match first_held {
                    Some(first) => first > oldest_needed,
                    None => self.last_id > k,
                };
                let mut frames = Vec::new();
                if lost {
                    let first = first_held.unwrap_or(self.last_id + 1);
                    frames.push(reset_frame(k, first, self.last_id));
                }
                frames.extend(self.events_after(k));
                (k, frames, lost)
            }
        }
    }

    /// [`ChannelState::replay`] for a finished channel, where nothing live follows: a first
    /// visit (`Start`) gets the last event — the final state, with its own id — and a resume
    /// the events after its id. `None` when the subscriber lacks nothing (it holds the last
    /// id, asked only for live events, or the ring kept nothing to give).
    pub(super) fn replay_finished(&self, from: StartAt) -> Option<(u64, Replay, bool)> {
        match from {
            StartAt::Live => None,
            StartAt::Start => {
                let (id, last) = self.ring.back()?;
                Some((id - 1, vec![(Mark::Event(*id), last.clone())], false))
            }
            StartAt::After(k) if k >= self.last_id => None,
            StartAt::After(_) => Some(self.replay(from)),
        }
    }

    /// The ring's events after `id`, oldest first.
    fn events_after(&self, id: u64) -> Replay {
        let after = self.ring.iter().filter(|(held, _)| *held > id);
        after.map(|(id, b)| (Mark::Event(*id), b.clone())).collect()
    }
}

/// `event: reset`: events after `after` up to `first - 1` are gone; what follows starts at
/// `first`. Carries `id: first - 1` so an immediate reconnect does not reset again.
pub(crate) fn reset_frame(after: u64, first: u64, last: u64) -> (Mark, Bytes) {
    let data = serde_json::json!({ "after": after, "first_available": first, "last": last });
    let cursor = first.saturating_sub(1);
    let frame = Frame::new()
        .id(cursor)
        .event(&names::RESET)
        .data(&data.to_string())
        .finish();
    let mark = Mark::Reset {
        cursor,
        restart: false,
    };
    (mark, frame)
}
