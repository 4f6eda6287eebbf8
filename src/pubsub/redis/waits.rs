//! `--redis-min-replicas N`: a publish answers 202 only once N replicas have its event.
//!
//! Redis replicates asynchronously; `WAIT N ms` blocks until the writes of the connection it
//! is sent on reached N replicas, or the time is up. It cannot run inside the publish script,
//! and it holds the connection it is sent on, so publishes that wait do not share the command
//! connection: each takes one of at most [`CONNECTIONS`] dedicated connections, runs its
//! script and `WAIT` there, and gives it back. Not confirmed in time → 503: the event is in
//! the master's ring and may already have reached subscribers (it was sent live), but a
//! failover now could lose it.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Unavailable;
use super::backend::{Backend, Commands};
use crate::sync::lock;

/// The most publishes waiting for replicas at once on one node; more wait for a connection.
const CONNECTIONS: usize = 32;
/// How long a publish waits for its replicas before it answers 503.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Waits {
    /// Replicas each event must reach; 0: no waiting.
    min: usize,
    idle: Mutex<Vec<Commands>>,
    permits: Arc<Semaphore>,
    unconfirmed: AtomicU64,
}

impl Waits {
    pub(super) fn new(min: usize) -> Self {
        Self {
            min,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(CONNECTIONS)),
            unconfirmed: AtomicU64::new(0),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.min > 0
    }

    pub(super) fn unconfirmed(&self) -> u64 {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// A dedicated connection, and the permit that counts it.
    pub(super) async fn take(
        &self,
        backend: &Backend,
    ) -> Result<(Commands, OwnedSemaphorePermit), String> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "closed".to_string())?;
        let idle = lock(&self.idle).pop();
        let commands = match idle {
            Some(commands) => commands,
            None => backend.dedicated().await?,
        };
        Ok((commands, permit))
    }

    /// A connection that worked, for the next publish.
    pub(super) fn give_back(&self, commands: Commands, permit: Option<OwnedSemaphorePermit>) {
        if permit.is_some() {
            lock(&self.idle).push(commands);
        }
    }

    /// Wait until the event `id` just written on `commands` (to the shard of `key`) reached
    /// the replicas asked for.
    pub(super) async fn confirm(
        &self,
        commands: &mut Commands,
        key: &str,
        id: u64,
    ) -> Result<(), Unavailable> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.min).arg(WAIT_TIMEOUT.as_millis() as u64);
        let answer: redis::RedisResult<i64> = match commands {
            Commands::Node(c) => wait.query_async(c).await,
            Commands::Cluster(c) => {
                // The node the script ran on: the key's master.
                let route = Route::with_key(key, SlotAddr::Master);
                let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                c.route_command(wait, to)
                    .await
                    .and_then(|v| redis::from_redis_value(v).map_err(Into::into))
            }
        };
        let reached = match answer {
            Ok(reached) => reached.max(0) as usize,
            Err(e) => {
                self.unconfirmed.fetch_add(1, Ordering::Relaxed);
                return Err(Unavailable::new(format!(
                    "WAIT for event {id}: {e}; it may still be delivered"
                )));
            }
        };
        if reached < self.min {
            self.unconfirmed.fetch_add(1, Ordering::Relaxed);
            return Err(Unavailable::new(format!(
                "event {id} reached {reached} of the {} replicas --redis-min-replicas asks for \
                 within {} ms; it may still be delivered",
                self.min,
                WAIT_TIMEOUT.as_millis()
            )));
        }
        Ok(())
    }
}
