//! Ids that have ended on purpose (a finished demo clock, a deleted session), remembered for
//! a while so a browser's reconnect can be answered with 204 and stop.
//!
//! Bounded twice: entries expire after a time to live, and past the capacity the oldest
//! entry is forgotten, so a flood of ids cannot grow memory without limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sync::lock;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Tombstones {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    ttl: Duration,
    ended: Mutex<HashMap<String, Instant>>,
}

impl Tombstones {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                ttl,
                ended: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn ended(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        lock(&self.shared.ended)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ended()
            .get(id)
            .is_some_and(|at| at.elapsed() < self.shared.ttl)
    }

    pub fn insert(&self, id: &str) {
        let ttl = self.shared.ttl;
        let mut ended = self.ended();
        if ended.len() >= self.shared.capacity {
            ended.retain(|_, at| at.elapsed() < ttl);
        }
        if ended.len() >= self.shared.capacity {
            // Still full of fresh entries: forget the oldest.
            let oldest = ended
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                ended.remove(&oldest);
            }
        }
        ended.insert(id.to_string(), Instant::now());
    }

    pub fn remove(&self, id: &str) {
        self.ended().remove(id);
    }

    /// Drop expired entries (called by the hub's sweeper).
    pub fn sweep(&self) {
        let ttl = self.shared.ttl;
        self.ended().retain(|_, at| at.elapsed() < ttl);
    }

    pub fn len(&self) -> usize {
        self.ended().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_capacity_forgets_the_oldest() {
        let tombstones = Tombstones::new(2, Duration::from_secs(60));
        tombstones.insert("a");
        tokio::time::advance(Duration::from_secs(1)).await;
        tombstones.insert("b");
        tokio::time::advance(Duration::from_secs(1)).await;
        tombstones.insert("c");
        assert!(
            !tombstones.contains("a"),
            "the oldest is forgotten at capacity"
        );
        assert!(tombstones.contains("b") && tombstones.contains("c"));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!tombstones.contains("c"), "expired after the ttl");
        tombstones.sweep();
        assert!(tombstones.is_empty());
    }
}
