//! The replay rules of the in-process ring, applied to what Redis's ring holds: where a
//! subscriber's cursor starts, which stored events it gets before live ones, and the `reset`
//! that says when some are gone.

use bytes::Bytes;

use super::scripts::Stored;
use crate::pubsub::fanout::{self, StartAt};
use crate::sse::EventName;

/// The cursor, the frames to send before live events, and whether the first is a `reset`,
/// for a subscriber starting at `from` — the in-process ring's rules on Redis's ring.
pub(super) fn replay(from: StartAt, stored: &Stored) -> (u64, Vec<Bytes>, bool) {
    let last = stored.last_id;
    let frames = |after: u64| -> Vec<Bytes> {
        stored
            .events
            .iter()
            .filter(|e| e.id > after)
            .map(|e| {
                let name = (!e.name.is_empty())
                    .then(|| EventName::new(e.name.clone()).ok())
                    .flatten();
                fanout::encode(e.id, name.as_ref(), &e.data)
            })
            .collect()
    };
    let (after, cursor) = match from {
        StartAt::Live => return (last, Vec::new(), false),
        StartAt::Start => (0, 0),
        StartAt::After(k) if k > last => {
            // The client holds ids this numbering never gave: Redis lost the channel.
            return (k, vec![fanout::reset_frame(k, last + 1, last)], true);
        }
        StartAt::After(k) => (k, k),
    };
    let lost = match stored.first_held {
        Some(first) => first > after + 1,
        None => last > after,
    };
    let mut out = Vec::new();
    if lost {
        let first = stored.first_held.unwrap_or(last + 1);
        out.push(fanout::reset_frame(after, first, last));
    }
    out.extend(frames(after));
    (cursor, out, lost)
}

/// [`replay`] for a finished channel (an order that is done), where nothing live follows: a
/// first visit gets the last event, with its id; a resume the events after its id. `None`
/// when the subscriber lacks nothing (it holds the last id, or asked only for live events).
pub(super) fn replay_finished(from: StartAt, stored: &Stored) -> Option<(u64, Vec<Bytes>, bool)> {
    match from {
        StartAt::Live => None,
        StartAt::Start => {
            let last = stored.events.last()?;
            let name = (!last.name.is_empty())
                .then(|| EventName::new(last.name.clone()).ok())
                .flatten();
            let frame = fanout::encode(last.id, name.as_ref(), &last.data);
            Some((last.id - 1, vec![frame], false))
        }
        StartAt::After(k) if k >= stored.last_id => None,
        StartAt::After(_) => Some(replay(from, stored)),
    }
}
