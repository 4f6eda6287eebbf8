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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::fanout::{Exclusive, Fanout, StartAt, SubscribeError, SubscriberMeta, Subscription};
use crate::sse::{CloseReason, EventName, names};
use crate::sync::lock;

/// The seed pushes an order's detail every 5 s.
pub const SEED_INTERVAL_MS: u64 = 5000;
pub const DEFAULT_STEPS: u32 = 5;
const MAX_STEPS: u32 = 100;
const MAX_INTERVAL_MS: u64 = 3_600_000;
const MAX_TITLE_CHARS: usize = 200;

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

#[derive(Debug, Clone, Copy)]
struct Plan {
    steps: u32,
    interval: Duration,
    fail_at: Option<u32>,
    expire_after: Option<Duration>,
}

/// Running and recently finished orders. A cheap clone over shared state.
#[derive(Debug, Clone)]
pub struct Orders {
    shared: Arc<OrdersShared>,
}

#[derive(Debug)]
struct OrdersShared {
    fanout: Fanout,
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
    /// `shutdown` stops every worker when the server stops.
    pub fn new(
        fanout: Fanout,
        max_running: usize,
        linger: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(OrdersShared {
                fanout,
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

    /// Validate, register and start an order; returns its first detail.
    pub fn create(&self, order: NewOrder) -> Result<OrderDetail, OrderError> {
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
        let id = format!("o-{}", shared.next_id.fetch_add(1, Ordering::Relaxed) + 1);
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
        shared.fanout.ensure(&key(&id));
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
    pub fn subscribe(
        &self,
        id: &str,
        last_event_id: Option<u64>,
        meta: SubscriberMeta,
    ) -> Result<Subscription, OrderError> {
        let from = last_event_id.map_or(StartAt::Start, StartAt::After);
        self.shared
            .fanout
            .subscribe_existing(&key(id), from, meta, Exclusive::Shared)
            .ok_or_else(|| OrderError::NotFound { id: id.to_string() })?
            // `Busy` comes only with `Exclusive::Reject`; orders are shared.
            .map_err(|e| match e {
                SubscribeError::Finished | SubscribeError::Busy => OrderError::Finished,
            })
    }

    /// The simulated work: one `progress` per step, then `done` or `failed`, then the
    /// channel finishes; after the linger the order is forgotten. Stopped at shutdown by
    /// the select in [`Orders::create`]; `slot` is given back however it ends.
    async fn work(self, mut detail: OrderDetail, plan: Plan, slot: RunningSlot) {
        let key = key(&detail.order_id);
        let started = tokio::time::Instant::now();
        self.publish(&key, &names::PROGRESS, &detail, false);
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
            self.publish(&key, &names::PROGRESS, &detail, false);
        }
        detail.status = outcome.as_str();
        self.publish(&key, &outcome.event(), &detail, true);
        drop(slot);
        tracing::info!(
            order = detail.order_id,
            outcome = outcome.as_str(),
            "order finished"
        );

        tokio::time::sleep(self.shared.linger).await;
        self.shared.fanout.remove(&key, CloseReason::End);
        self.details().remove(&detail.order_id);
    }

    /// Publish `detail` as event `name` (finishing the channel after it when it is the
    /// `last`), and only then record it: a client that reads a final status from
    /// [`Orders::detail`] finds the channel finished, so a page it opens gets the final event.
    fn publish(&self, key: &str, name: &EventName, detail: &OrderDetail, last: bool) {
        // A struct of strings, numbers and bools: serde_json cannot fail on it.
        let data = serde_json::to_string(detail).unwrap_or_default();
        self.shared.fanout.publish(key, Some(name), &data);
        if last {
            self.shared.fanout.close(key, CloseReason::End, true);
        }
        self.details()
            .insert(detail.order_id.clone(), detail.clone());
    }
}

impl Plan {
    fn from_request(order: &NewOrder) -> Result<Self, OrderError> {
        let steps = order.steps.unwrap_or(DEFAULT_STEPS);
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(OrderError::Invalid(format!(
                "steps must be from 1 to {MAX_STEPS}"
            )));
        }
        let interval_ms = order.interval_ms.unwrap_or(SEED_INTERVAL_MS);
        if !(1..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(OrderError::Invalid(format!(
                "interval_ms must be from 1 to {MAX_INTERVAL_MS}"
            )));
        }
        if let Some(fail_at) = order.fail_at
            && !(1..=steps).contains(&fail_at)
        {
            return Err(OrderError::Invalid(format!(
                "fail_at must be a step from 1 to {steps}"
            )));
        }
        Ok(Self {
            steps,
            interval: Duration::from_millis(interval_ms),
            fail_at: order.fail_at,
            expire_after: order.expire_after_ms.map(Duration::from_millis),
        })
    }
}

#[cfg(test)]
mod tests;
