//! The lab's own stream cap, so its "refused" scenario can fill a cap on any server:
//! `/sse/hello?slots=N&group=G` lets at most `N` streams of group `G` be open at once; the
//! next is refused as a full `--max-streams` would be (reason `lab_slots`, a short
//! `Retry-After`), and the cap frees as those streams end.
//!
//! Why not lower `--max-streams` for the lab: that would refuse every other page on the
//! server too. A group is the lab's run id; it lives while one of its streams is open, and
//! at most [`MAX_GROUPS`] are open at once, so the map cannot grow with requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AppError;
use crate::sse::RefusalReason;
use crate::sync::lock;

/// Groups open at once; more are refused like a full group.
pub const MAX_GROUPS: usize = 256;
/// Most streams a group may hold: more is not a lab scenario.
pub const MAX_SLOTS: u64 = 100;
/// A group name's length at most.
const MAX_GROUP_LEN: usize = 64;
/// The lab's refusals come back soon, so the scenario plays out in seconds.
pub const LAB_RETRY_AFTER_SECS: u64 = 2;

/// Open streams per group.
#[derive(Debug, Clone, Default)]
pub struct LabSlots {
    groups: Arc<Mutex<HashMap<String, u64>>>,
}

/// One stream's place in its group, given back when dropped (with the stream's body).
#[derive(Debug)]
pub struct Slot {
    groups: Arc<Mutex<HashMap<String, u64>>>,
    group: String,
}

impl LabSlots {
    /// A place in `group` (at most `slots` open), or a refusal a later try can pass.
    pub fn take(&self, group: &str, slots: u64) -> Result<Slot, AppError> {
        if group.is_empty()
            || group.len() > MAX_GROUP_LEN
            || !group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AppError::bad_request(format!(
                "group must be 1 to {MAX_GROUP_LEN} letters, digits, - or _, got {group:?}"
            )));
        }
        let mut groups = lock(&self.groups);
        let full = |message: String| {
            Err(AppError::unavailable(
                RefusalReason::LabSlots,
                message,
                LAB_RETRY_AFTER_SECS,
            ))
        };
        if !groups.contains_key(group) && groups.len() >= MAX_GROUPS {
            return full(format!(
                "the lab holds {MAX_GROUPS} slot groups already; retry later"
            ));
        }
        let open = groups.entry(group.to_string()).or_default();
        if *open >= slots {
            return full(format!(
                "the lab's group {group} is full (slots={slots}); retry later"
            ));
        }
        *open += 1;
        Ok(Slot {
            groups: Arc::clone(&self.groups),
            group: group.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut groups = lock(&self.groups);
        if let Some(open) = groups.get_mut(&self.group) {
            *open -= 1;
            if *open == 0 {
                groups.remove(&self.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_holds_its_slots_and_frees_them_as_streams_end() {
        let slots = LabSlots::default();
        let first = slots.take("run-1", 2).expect("room");
        let _second = slots.take("run-1", 2).expect("room");
        let refused = slots.take("run-1", 2).expect_err("full");
        assert_eq!(refused.refused, Some(RefusalReason::LabSlots));
        assert!(slots.take("run-2", 2).is_ok(), "groups are apart");
        drop(first);
        assert!(slots.take("run-1", 2).is_ok());
    }

    #[test]
    fn a_group_leaves_with_its_last_stream_and_bad_names_are_400() {
        let slots = LabSlots::default();
        drop(slots.take("a", 1).expect("room"));
        assert!(lock(&slots.groups).is_empty());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            let error = slots.take(bad, 1).expect_err(bad);
            assert_eq!(error.status.as_u16(), 400, "{bad}");
        }
    }
}
