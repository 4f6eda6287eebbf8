//! Events numbered elsewhere: when Redis numbers a channel's events, this node's fan-out only
//! delivers them to its own subscribers. The numbering it follows is Redis's, with an epoch
//! that changes when Redis lost the channel (its ids started over), and delivery drops an id
//! it already had: the same event may arrive by a catch-up after a reconnect and live.

use std::sync::atomic::Ordering;

use super::channel::{self, Restart};
use super::{Exclusive, Fanout, Published};
use crate::sse::EventName;
use crate::sync::lock;

impl Fanout {
    /// Queue an event numbered elsewhere (by Redis, in `epoch`) for the channel's local
    /// subscribers. An id already delivered is dropped (the same event can arrive twice: by
    /// a replay after a reconnect and live); a new epoch first tells every subscriber
    /// `reset` (the ids started over). `None` when the channel is not here, has finished,
    /// or already had this id.
    pub fn deliver(
        &self,
        key: &str,
        epoch: &str,
        id: u64,
        name: Option<&EventName>,
        data: &str,
    ) -> Option<Published> {
        let channel = self.channel(key)?;
        let mut state = lock(&channel.state);
        if state.finished {
            return None;
        }
        let limits = self.shared.limits;
        let totals = &self.shared.totals;
        match state.epoch.as_deref() {
            Some(known) if known != epoch => {
                let told = state.restart(key, id, Restart::Epoch, limits);
                totals.resets.fetch_add(told as u64, Ordering::Relaxed);
            }
            _ => {}
        }
        state.epoch = Some(epoch.to_string());
        if id <= state.last_id {
            return None;
        }
        let delivery = state.push_numbered(key, id, channel::encode(id, name, data), limits);
        drop(state);
        delivery.wakeups.wake_later();
        totals.published.fetch_add(1, Ordering::Relaxed);
        totals.slow.fetch_add(delivery.slow, Ordering::Relaxed);
        Some(Published {
            id,
            subscribers: delivery.delivered,
        })
    }

    /// The epoch and last id this node has seen for `key`, when its events come from
    /// elsewhere: what a reconnect to Redis resumes after.
    pub fn numbering(&self, key: &str) -> Option<(Option<String>, u64)> {
        let channel = self.channel(key)?;
        let state = lock(&channel.state);
        Some((state.epoch.clone(), state.last_id))
    }

    /// Remember the epoch a Redis replay was read in, if this channel has none yet, so a
    /// later change of epoch is seen.
    pub fn adopt_epoch(&self, key: &str, epoch: &str) {
        if let Some(channel) = self.channel(key) {
            lock(&channel.state)
                .epoch
                .get_or_insert_with(|| epoch.to_string());
        }
    }

    /// Events before `first` are gone from the ring this channel's events come from: its
    /// subscribers get `reset` and continue at `first`.
    pub fn skip_to(&self, key: &str, first: u64) {
        if let Some(channel) = self.channel(key) {
            let limits = self.shared.limits;
            let told = lock(&channel.state).restart(key, first, Restart::Gap, limits);
            let resets = &self.shared.totals.resets;
            resets.fetch_add(told as u64, Ordering::Relaxed);
        }
    }

    /// A newer subscriber of `key` joined elsewhere (another node): every subscriber here
    /// ends with `replaced`.
    pub fn replace_all(&self, key: &str) {
        if let Some(channel) = self.channel(key) {
            let mut state = lock(&channel.state);
            // Never refuses: only `Reject` does.
            let _ = state.make_room(key, Exclusive::Replace);
            state.note_idle();
        }
    }

    /// Count a replay collected elsewhere (from Redis) like one from the ring.
    pub fn count_replay(&self, frames: usize, reset: bool) {
        self.shared.totals.count_replay(frames, reset);
    }
}
