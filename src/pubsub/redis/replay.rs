//! The replay rules of the in-process ring, applied to what Redis's ring holds: where a
//! subscriber's cursor starts, which stored events it gets before live ones, and the `reset`
//! that says when some are gone.

use bytes::Bytes;

use super::scripts::{Stored, StoredEvent};
use crate::pubsub::fanout::{self, Mark, Replay, StartAt};
use crate::sse::EventName;

/// The cursor, the frames to send before live events, and whether the first is a `reset`,
/// for a subscriber starting at `from` — the in-process ring's rules on Redis's ring.
pub(super) fn replay(from: StartAt, stored: &Stored) -> (u64, Replay, bool) {
    let last = stored.last_id;
    let frames = |after: u64| -> Replay {
        let after = stored.events.iter().filter(|e| e.id > after);
        after.map(|e| (Mark::Event(e.id), frame(e))).collect()
    };
    let (after, cursor) = match from {
        StartAt::Live => return (last, Vec::new(), false),
        // From the beginning of this numbering, which started at `start`, not at 0.
        StartAt::Start => (stored.start, stored.start),
        StartAt::After(k) if k > last => {
            // The client holds ids this numbering never gave (made up, or from a numbering
            // started while Redis's clock was ahead): say so, then continue live.
            return (k, vec![fanout::reset_frame(k, last + 1, last)], true);
        }
        StartAt::After(k) => (k, k),
    };
    let lost = stored.lost_after(after);
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
pub(super) fn replay_finished(from: StartAt, stored: &Stored) -> Option<(u64, Replay, bool)> {
    match from {
        StartAt::Live => None,
        StartAt::Start => {
            let last = stored.events.last()?;
            Some((
                last.id - 1,
                vec![(Mark::Event(last.id), frame(last))],
                false,
            ))
        }
        StartAt::After(k) if k >= stored.last_id => None,
        StartAt::After(_) => Some(replay(from, stored)),
    }
}

/// A stored event as subscribers read it.
fn frame(event: &StoredEvent) -> Bytes {
    let name = (!event.name.is_empty())
        .then(|| EventName::new(event.name.clone()).ok())
        .flatten();
    fanout::encode(event.id, name.as_ref(), &event.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where Redis's clock was when the numbering started.
    const START: u64 = 1_796_000_000_000_000;

    fn stored(held: std::ops::RangeInclusive<u64>) -> Stored {
        Stored {
            epoch: format!("{START}:00ff"),
            last_id: *held.end(),
            start: START,
            first_held: Some(*held.start()),
            before_first: *held.start() - 1,
            finished: false,
            events: held
                .map(|id| StoredEvent {
                    id,
                    name: String::new(),
                    data: id.to_string(),
                })
                .collect(),
        }
    }

    /// A numbering that started and has no event yet.
    fn nothing_published() -> Stored {
        Stored {
            first_held: None,
            before_first: 0,
            events: Vec::new(),
            ..stored(START..=START)
        }
    }

    fn is_reset((mark, frame): &(Mark, Bytes)) -> bool {
        matches!(mark, Mark::Reset { .. })
            && String::from_utf8_lossy(frame).contains("event: reset")
    }

    #[test]
    fn from_the_start_means_from_where_the_numbering_started() {
        let (cursor, frames, reset) = replay(StartAt::Start, &stored(START + 1..=START + 3));
        assert_eq!((cursor, frames.len(), reset), (START, 3, false));
        // Nothing published yet: the cursor is the start, so a reconnect with it is no gap.
        let empty = nothing_published();
        let (cursor, frames, _) = replay(StartAt::Start, &empty);
        assert_eq!((cursor, frames.len()), (START, 0));
        let (_, frames, reset) = replay(StartAt::After(START), &empty);
        assert_eq!((frames.len(), reset), (0, false));
        // The ring moved on since: reset first, as in-process.
        let (_, frames, reset) = replay(StartAt::Start, &stored(START + 5..=START + 9));
        assert!(reset && is_reset(&frames[0]) && frames.len() == 6);
    }

    #[test]
    fn an_id_from_an_older_numbering_is_below_the_ring_and_resets() {
        // An id the channel gave before Redis lost it: smaller than any id of the new one.
        let old = START - 1_000_000 + 50;
        let (cursor, frames, reset) = replay(StartAt::After(old), &stored(START + 1..=START + 80));
        assert_eq!((cursor, frames.len(), reset), (old, 81, true));
        assert!(is_reset(&frames[0]));
        let empty = nothing_published();
        let (_, frames, reset) = replay(StartAt::After(old), &empty);
        assert!(reset && is_reset(&frames[0]) && frames.len() == 1);
    }

    #[test]
    fn a_ring_that_starts_where_the_numbering_jumped_lost_nothing() {
        // A failover: the promoted master's counter was at START + 10 and jumped to START + 5e6.
        let jumped = START + 5_000_000;
        let mut ring = stored(jumped + 1..=jumped + 3);
        ring.before_first = START + 10;
        // Resuming from the id given before the jump, or from one the old master gave after
        // it (lost with it): the ring's events, no reset.
        for after in [START + 10, START + 12] {
            let (cursor, frames, reset) = replay(StartAt::After(after), &ring);
            assert_eq!((cursor, frames.len(), reset), (after, 3, false));
        }
        // From before that: what the ring no longer holds is gone, said with a reset.
        let (_, frames, reset) = replay(StartAt::After(START + 9), &ring);
        assert!(reset && is_reset(&frames[0]) && frames.len() == 4);
    }
}
