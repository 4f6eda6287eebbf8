//! How open streams learn that the server is shutting down, cheaply enough to check on every
//! poll of every stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// Set once, by [`StreamRegistry::shut_down`](super::StreamRegistry::shut_down): what every
/// open stream watches to end. An atomic a stream reads on every poll and a [`Notify`] it
/// registers with once (again only if it is polled by another task), where a
/// [`CancellationToken`](tokio_util::sync::CancellationToken) takes two shared locks per poll,
/// on every stream, for every event.
#[derive(Debug, Default)]
pub struct Ending {
    started: AtomicBool,
    notify: Arc<Notify>,
}

impl Ending {
    /// The server started shutting down.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Resolves when the server starts shutting down. Made before [`Ending::started`] is
    /// read, it cannot miss the start.
    pub fn notified(&self) -> OwnedNotified {
        Arc::clone(&self.notify).notified_owned()
    }

    pub(super) fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}
