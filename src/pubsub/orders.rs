//! Orders: the seed's real use case. Creating one starts simulated work whose progress is
//! published on the order's channel: `progress` at each step, then `done` or `failed`, then
//! the channel finishes.
//!
//! Each order is a [`super::fanout`] channel, so a reconnect mid-order with `Last-Event-ID`
//! resumes without repeating steps, and a page opened late replays what it missed. Once the
//! order has finished, a follower still gets what it lacks and then the stream ends: a page
//! opened after the end (no `Last-Event-ID`) gets the final event — `done` or `failed`, with
//! its id — and a resume from an older id the events after it. A reconnect that already
//! holds the last event gets [`OrderError::Finished`] (the HTTP layer answers 204, so the
//! browser stops; the seed's page reconnected forever).
//!
//! The work runs on its own task, stopped by the server's shutdown token; the running count
//! is held by a guard, so a worker that ends for any reason (a panic too) frees its slot.
//!
//! With Redis ([`super::bus::Bus::Redis`]) an order still runs on the node that created it
//! (`--max-orders` counts per node, and its id carries the node's tag), but its events, its
//! end and its last detail are in Redis, so any node follows it and answers for it. A step
//! Redis cannot take is tried again until it can: an order never skips one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::bus::{Bus, BusSubscribeError};
use super::fanout::{StartAt, SubscribeError, SubscriberMeta, Subscription};
use crate::sse::{CloseReason, EventName, names};
use crate::sync::lock;
use plan::Plan;

/// The seed pushes an order's detail every 5 s.
pub const SEED_INTERVAL_MS: u64 = 5000;
pub const DEFAULT_STEPS: u32 = 5;
const MAX_STEPS: u32 = 100;
const MAX_INTERVAL_MS: u64 = 3_600_000;
const MAX_TITLE_CHARS: usize = 200;
/// How often an order step that Redis did not take is tried again.
const RETRY_PUBLISH: Duration = Duration::from_millis(500);

/// What `POST /api/orders` may say; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub title: Option<String>,
    pub amount: Option<f64>,
    pub steps: Option<u32>,
    pub interval_ms: Option<u64>,
    /// The step number at which the order fails.
    pub fail_at: Option<u32>,
    /// The order expires (fails with `expired: true`) if not done this long after creation.
    pub expire_after_ms: Option<u64>,
}

/// The JSON every progress, done and failed event carries (the seed's order detail).
#[derive(Debug, Clone, Serialize)]
pub struct OrderDetail {
    pub order_id: String,
    pub status: &'static str,
    pub progress: u32,
    pub title: String,
    pub amount: f64,
    pub expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an order cannot be created or followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// The order's fields are out of range; the text says which and how.
    Invalid(String),
    /// `--max-orders` orders are running.
    Busy { max_running: usize },
    /// No such order (never created, or forgotten after its linger).
    NotFound { id: String },
    /// The order has finished and the client already holds its last event.
    Finished,
    /// The shared backend (Redis) did not answer: nothing was done; retry later.
    Unavailable(String),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(reason) => f.write_str(reason),
            Self::Busy { max_running } => {
                write!(
                    f,
                    "--max-orders {max_running} orders are running; retry later"
                )
            }
            Self::NotFound { id } => write!(f, "no order {id:?}"),
            Self::Finished => f.write_str("the order has finished"),
            Self::Unavailable(reason) => write!(
                f,
                "redis is unavailable ({reason}); nothing was accepted, retry later"
            ),
        }
    }
}

impl std::error::Error for OrderError {}

/// How an order ended; the last event it publishes is named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed,
}

impl Outcome {
    fn event(self) -> EventName {
        match self {
            Self::Done => names::DONE,
            Self::Failed => names::FAILED,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// Running and recently finished orders. A cheap clone over shared state.
#[derive(Debug, Clone)]
pub struct Orders {
    shared: Arc<OrdersShared>,
}

#[derive(Debug)]
struct OrdersShared {
    bus: Bus,
    /// `o-` and, with Redis, this node's tag: ids made on different nodes never collide.
    id_prefix: String,
    max_running: usize,
    running: AtomicUsize,
    next_id: AtomicU64,
    /// How long a finished order stays answerable (its final event to a new page, 204 to a
    /// reconnect that has it) before it is forgotten.
    linger: Duration,
    details: Mutex<HashMap<String, OrderDetail>>,
    /// The server's: cancelled at shutdown, when every worker stops.
    shutdown: CancellationToken,
}

/// One running order's slot in the `--max-orders` count, given back on drop.
struct RunningSlot(Arc<OrdersShared>);

impl Drop for RunningSlot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn key(id: &str) -> String {
    format!("order:{id}")
}

impl Orders {
    /// `shutdown` stops every worker when the server stops. Orders are channels on `bus`
    /// (a [`super::fanout::Fanout`] alone is the in-process bus).
    pub fn new(
        bus: impl Into<Bus>,
        max_running: usize,
        linger: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let bus = bus.into();
        let id_prefix = match bus.node_tag() {
            Some(tag) => format!("o-{tag}-"),
            None => "o-".to_string(),
        };
        Self {
            shared: Arc::new(OrdersShared {
                bus,
                id_prefix,
                max_running,
                running: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                linger,
                details: Mutex::new(HashMap::new()),
                shutdown,
            }),
        }
    }

    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::SeqCst)
    }

    pub fn detail(&self, id: &str) -> Option<OrderDetail> {
        self.details().get(id).cloned()
    }

    fn details(&self) -> std::sync::MutexGuard<'_, HashMap<String, OrderDetail>> {
        lock(&self.shared.details)
    }

    /// Validate, register and start an order; returns its first detail, already published
    /// (so any node can follow the order as soon as its id is known).
    pub async fn create(&self, order: NewOrder) -> Result<OrderDetail, OrderError> {
        let plan = Plan::from_request(&order)?;
        let amount = order.amount.unwrap_or(0.0);
        if !amount.is_finite() || amount < 0.0 {
            return Err(OrderError::Invalid(
                "amount must be a number of 0 or more".into(),
            ));
        }
        let title = order.title.unwrap_or_default();
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(OrderError::Invalid(format!(
                "title must be at most {MAX_TITLE_CHARS} characters"
            )));
        }
        let shared = &self.shared;
        if shared.running.fetch_add(1, Ordering::SeqCst) >= shared.max_running {
            shared.running.fetch_sub(1, Ordering::SeqCst);
            return Err(OrderError::Busy {
                max_running: shared.max_running,
            });
        }
        let slot = RunningSlot(shared.clone());
        let n = shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}{n}", shared.id_prefix);
        let detail = OrderDetail {
            title: if title.is_empty() {
                format!("order {id}")
            } else {
                title
            },
            order_id: id.clone(),
            status: "created",
            progress: 0,
            amount,
            expired: false,
            reason: None,
        };
        let key = key(&id);
        shared.bus.local().ensure(&key);
        let data = serde_json::to_string(&detail).unwrap_or_default();
        if let Err(e) = shared
            .bus
            .publish(&key, Some(&names::PROGRESS), &data, false)
            .await
        {
            shared.bus.local().remove(&key, CloseReason::End);
            return Err(OrderError::Unavailable(e.reason));
        }
        self.details().insert(id.clone(), detail.clone());
        tracing::info!(order = id, steps = plan.steps, "order created");
        let worker = self.clone();
        let first = detail.clone();
        tokio::spawn(async move {
            let stop = worker.shared.shutdown.clone();
            tokio::select! {
                _ = worker.work(first, plan, slot) => {}
                _ = stop.cancelled() => {}
            }
        });
        Ok(detail)
    }

    /// Follow an order: from the start, or after `last_event_id`. A finished order still
    /// gives what the client has not seen (its final state, to a first visit) and then
    /// ends; a client that already holds the last event gets [`OrderError::Finished`].
    pub async fn subscribe(
        &self,
        id: &str,
        last_event_id: Option<u64>,
        meta: SubscriberMeta,
    ) -> Result<Subscription, OrderError> {
        let from = last_event_id.map_or(StartAt::Start, StartAt::After);
        self.shared
            .bus
            .subscribe_existing(&key(id), from, meta)
            .await
            .map_err(|e| match e {
                // `Busy` comes only with `Exclusive::Reject`; orders are shared.
                BusSubscribeError::Refused(SubscribeError::Finished | SubscribeError::Busy) => {
                    OrderError::Finished
                }
                BusSubscribeError::Deleted => OrderError::NotFound { id: id.to_string() },
                BusSubscribeError::Unavailable(e) => OrderError::Unavailable(e.reason),
            })?
            .ok_or_else(|| OrderError::NotFound { id: id.to_string() })
    }

    /// The order's latest detail, from any node: this node's record, or (with Redis) the
    /// data of its last event.
    pub async fn detail_anywhere(&self, id: &str) -> Result<serde_json::Value, OrderError> {
        if let Some(detail) = self.detail(id) {
            return Ok(serde_json::to_value(detail).unwrap_or_default());
        }
        let not_found = || OrderError::NotFound { id: id.to_string() };
        let data = self
            .shared
            .bus
            .last_data_elsewhere(&key(id))
            .await
            .map_err(|e| OrderError::Unavailable(e.reason))?
            .ok_or_else(not_found)?;
        serde_json::from_str(&data).map_err(|_| not_found())
    }

    /// The simulated work: one `progress` per step, then `done` or `failed`, then the
    /// channel finishes; after the linger the order is forgotten. Stopped at shutdown by
    /// the select in [`Orders::create`]; `slot` is given back however it ends.
    async fn work(self, mut detail: OrderDetail, plan: Plan, slot: RunningSlot) {
        let key = key(&detail.order_id);
        let started = tokio::time::Instant::now();
        let mut outcome = Outcome::Done;
        for step in 1..=plan.steps {
            tokio::time::sleep(plan.interval).await;
            if plan
                .expire_after
                .is_some_and(|limit| started.elapsed() >= limit)
            {
                detail.expired = true;
                detail.reason = Some("the order expired before it was done".into());
                outcome = Outcome::Failed;
                break;
            }
            if plan.fail_at == Some(step) {
                detail.reason = Some(format!("step {step} of {} failed", plan.steps));
                outcome = Outcome::Failed;
                break;
            }
            detail.progress = step * 100 / plan.steps;
            detail.status = if step == plan.steps {
                "completed"
            } else {
                "processing"
            };
            self.publish(&key, &names::PROGRESS, &detail, false).await;
        }
        detail.status = outcome.as_str();
        self.publish(&key, &outcome.event(), &detail, true).await;
        drop(slot);
        tracing::info!(
            order = detail.order_id,
            outcome = outcome.as_str(),
            "order finished"
        );

        tokio::time::sleep(self.shared.linger).await;
        self.shared.bus.remove(&key, CloseReason::End).await;
        self.details().remove(&detail.order_id);
    }

    /// Publish `detail` as event `name` (finishing the channel after it when it is the
    /// `last`), and only then record it: a client that reads a final status from
    /// [`Orders::detail`] finds the channel finished, so a page it opens gets the final event.
    /// A step is never dropped: while Redis is away, it is tried again every
    /// [`RETRY_PUBLISH`] (the worker stops at shutdown, by the select in [`Orders::create`]).
    async fn publish(&self, key: &str, name: &EventName, detail: &OrderDetail, last: bool) {
        // A struct of strings, numbers and bools: serde_json cannot fail on it.
        let data = serde_json::to_string(detail).unwrap_or_default();
        let bus = &self.shared.bus;
        while let Err(e) = bus.publish(key, Some(name), &data, false).await {
            tracing::warn!(channel = key, "order step not published yet: {}", e.reason);
            tokio::time::sleep(RETRY_PUBLISH).await;
        }
        if last {
            while let Err(e) = bus.finish(key).await {
                tracing::warn!(channel = key, "order end not published yet: {}", e.reason);
                tokio::time::sleep(RETRY_PUBLISH).await;
            }
        }
        self.details()
            .insert(detail.order_id.clone(), detail.clone());
    }
}

mod plan;
#[cfg(test)]
mod tests;
