//! The hub's housekeeping, on one task per server: forget sessions and topics idle for
//! `--session-linger`, and with Redis keep the channels followed here from expiring there.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Hub, SESSION, SWEEP_EVERY, TOPIC};

impl Hub {
    /// Forget sessions and topics nobody has subscribed to for `--session-linger`.
    pub async fn sweep(&self) {
        let linger = self.shared.config.linger;
        for prefix in [SESSION, TOPIC] {
            for key in self.bus().sweep_idle(prefix, linger).await {
                tracing::debug!(channel = key, "expired after --session-linger");
            }
        }
        self.shared.deleted.sweep();
    }

    /// Run [`Hub::sweep`] every second until `stop` is cancelled, and the bus's own work
    /// (with Redis: its pub/sub link, and keeping followed channels from expiring).
    pub fn spawn_sweeper(&self, stop: CancellationToken) {
        self.bus().spawn(stop.clone());
        let hub = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            let mut refresh = tokio::time::interval(self_refresh_period(hub.shared.config.linger));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = every.tick() => hub.sweep().await,
                    _ = refresh.tick(), if hub.bus().is_shared() => hub.keep_followed().await,
                }
            }
        });
    }

    /// With Redis, a channel that has subscribers here must not expire there while nobody
    /// publishes: refresh its linger.
    async fn keep_followed(&self) {
        for prefix in [SESSION, TOPIC] {
            for key in self.fanout().keys(prefix) {
                let followed = self
                    .fanout()
                    .info(&key)
                    .is_some_and(|info| info.subscriber_count > 0);
                if followed && let Err(e) = self.bus().exists(&key).await {
                    tracing::warn!(
                        channel = key,
                        "redis: could not refresh the linger: {}",
                        e.reason
                    );
                    return;
                }
            }
        }
    }
}

/// How often channels followed here have their Redis linger refreshed: well within it.
fn self_refresh_period(linger: Duration) -> Duration {
    (linger / 3).max(Duration::from_millis(100))
}
