//! Orders: the seed's real use case. `POST /api/orders` starts simulated work; the page
//! follows it on `GET /sse/orders/{id}` (or the seed's `/getOrderDetail?orderId=`) instead of
//! polling: `progress` at each step, then `done` or `failed`, then the stream closes — and a
//! reconnect gets 204, so the browser stops (the seed's page reconnected forever).
//!
//! Each order is a [`crate::fanout`] channel, so a reconnect mid-order with `Last-Event-ID`
//! resumes without repeating steps, and a page opened late replays what it missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{serve_subscription, subscriber_meta};
use crate::app::AppState;
use crate::conn::RequestInfo;
use crate::error::AppError;
use crate::fanout::{Exclusive, Fanout, StartAt, SubscribeError};
use crate::params;
use crate::posted::body_bytes;
use crate::sse::EventName;
use crate::streams::CloseReason;

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
    /// How long a finished order stays answerable (204 to reconnects) before it is forgotten.
    linger: Duration,
    details: Mutex<HashMap<String, OrderDetail>>,
}

fn key(id: &str) -> String {
    format!("order:{id}")
}

impl Orders {
    pub fn new(fanout: Fanout, max_running: usize, linger: Duration) -> Self {
        Self {
            shared: Arc::new(OrdersShared {
                fanout,
                max_running,
                running: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                linger,
                details: Mutex::new(HashMap::new()),
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
        self.shared
            .details
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Validate, register and start an order; returns its id.
    pub fn create(&self, order: NewOrder) -> Result<OrderDetail, AppError> {
        let plan = Plan::from_request(&order)?;
        let amount = order.amount.unwrap_or(0.0);
        if !amount.is_finite() || amount < 0.0 {
            return Err(AppError::bad_request(
                "amount must be a number of 0 or more",
            ));
        }
        let title = order.title.unwrap_or_default();
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(AppError::bad_request(format!(
                "title must be at most {MAX_TITLE_CHARS} characters"
            )));
        }
        let shared = &self.shared;
        if shared.running.fetch_add(1, Ordering::SeqCst) >= shared.max_running {
            shared.running.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::unavailable(
                format!(
                    "--max-orders {} orders are running; retry later",
                    shared.max_running
                ),
                5,
            ));
        }
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
        tokio::spawn(self.clone().work(detail.clone(), plan));
        Ok(detail)
    }

    /// The simulated work: one `progress` per step, then `done` or `failed`, then close.
    async fn work(self, mut detail: OrderDetail, plan: Plan) {
        let key = key(&detail.order_id);
        let started = tokio::time::Instant::now();
        self.publish(&key, "progress", &detail);
        let mut outcome = "done";
        for step in 1..=plan.steps {
            tokio::time::sleep(plan.interval).await;
            if plan
                .expire_after
                .is_some_and(|limit| started.elapsed() >= limit)
            {
                detail.status = "failed";
                detail.expired = true;
                detail.reason = Some("the order expired before it was done".into());
                outcome = "failed";
                break;
            }
            if plan.fail_at == Some(step) {
                detail.status = "failed";
                detail.reason = Some(format!("step {step} of {} failed", plan.steps));
                outcome = "failed";
                break;
            }
            detail.progress = step * 100 / plan.steps;
            detail.status = if step == plan.steps {
                "completed"
            } else {
                "processing"
            };
            self.publish(&key, "progress", &detail);
        }
        if outcome == "done" {
            detail.status = "done";
        }
        self.publish(&key, outcome, &detail);
        self.shared.fanout.close(&key, CloseReason::End, true);
        self.shared.running.fetch_sub(1, Ordering::SeqCst);
        tracing::info!(order = detail.order_id, outcome, "order finished");

        tokio::time::sleep(self.shared.linger).await;
        self.shared.fanout.remove(&key, CloseReason::End);
        self.details().remove(&detail.order_id);
    }

    fn publish(&self, key: &str, event: &str, detail: &OrderDetail) {
        let name = EventName::new(event).expect("order event names are constants");
        let data = serde_json::to_string(detail).expect("order detail serialises");
        self.details()
            .insert(detail.order_id.clone(), detail.clone());
        self.shared.fanout.publish(key, Some(&name), &data);
    }
}

impl Plan {
    fn from_request(order: &NewOrder) -> Result<Self, AppError> {
        let steps = order.steps.unwrap_or(DEFAULT_STEPS);
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(AppError::bad_request(format!(
                "steps must be from 1 to {MAX_STEPS}"
            )));
        }
        let interval_ms = order.interval_ms.unwrap_or(SEED_INTERVAL_MS);
        if !(1..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(AppError::bad_request(format!(
                "interval_ms must be from 1 to {MAX_INTERVAL_MS}"
            )));
        }
        if let Some(fail_at) = order.fail_at
            && !(1..=steps).contains(&fail_at)
        {
            return Err(AppError::bad_request(format!(
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

pub async fn create_order(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, AppError> {
    let body = body_bytes(request, &state).await?;
    let order: NewOrder = if body.iter().all(u8::is_ascii_whitespace) {
        NewOrder::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("malformed order JSON ({e})")))?
    };
    let detail = state.orders.create(order)?;
    let body = json!({ "id": detail.order_id, "order": detail });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let detail = state
        .orders
        .detail(&id)
        .ok_or_else(|| AppError::not_found(format!("no order {id:?}")))?;
    Ok(Json(detail).into_response())
}

pub async fn subscribe_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: RequestInfo,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    follow(state, id, request, headers).await
}

/// The seed's own URL: `GET /getOrderDetail?orderId=ID`.
pub async fn seed_order_detail(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    request: RequestInfo,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = query
        .get("orderId")
        .ok_or_else(|| AppError::bad_request("missing ?orderId="))?;
    follow(state, id.clone(), request, headers).await
}

async fn follow(
    state: AppState,
    id: String,
    request: RequestInfo,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let last_event_id = params::last_event_id(&headers)?;
    let key = key(&id);
    if !state.orders.shared.fanout.exists(&key) {
        return Err(AppError::not_found(format!("no order {id:?}")));
    }
    let from = last_event_id.map_or(StartAt::Start, StartAt::After);
    let subscription = match state.orders.shared.fanout.subscribe(
        &key,
        from,
        subscriber_meta(&request),
        Exclusive::Shared,
    ) {
        Ok(subscription) => subscription,
        Err(SubscribeError::Finished | SubscribeError::Busy) => {
            tracing::info!(order = id, "order already finished: 204 stops the browser");
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    };
    serve_subscription(
        &state,
        &request,
        "/sse/orders",
        last_event_id.is_some(),
        subscription,
        ("order_id", &id),
    )
}
