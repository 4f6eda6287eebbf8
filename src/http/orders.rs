//! Orders over HTTP: `POST /api/orders` starts one, `GET /api/orders/{id}` reads it, and
//! `GET /sse/orders/{id}` (or the seed's `/getOrderDetail?orderId=`) follows it as SSE
//! instead of polling. Handlers only translate; the rules live in [`crate::pubsub::orders`].
//!
//! With a key configured, an order is the channel `orders/ID`: following or reading it needs
//! a `subscribe` grant that matches, and creating one — whose id the server picks — a
//! `publish` grant for every order (`orders/*` or `*`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::caller::Caller;
use super::params::{self, LastEventId};
use super::posted::{body_bytes, is_json_object};
use super::streaming::{serve_subscription, stop_reconnecting, subscriber_meta};
use super::{AppError, AppState};
use crate::auth::{Channel, Kind, Need};
use crate::pubsub::orders::{NewOrder, OrderError};
use crate::server::RequestInfo;

pub async fn create_order(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<Response, AppError> {
    caller.require(Need::PublishAny(Kind::Order))?;
    let body = body_bytes(request, &state).await?;
    let order: NewOrder = if body.iter().all(u8::is_ascii_whitespace) {
        NewOrder::default()
    } else if !is_json_object(&body) {
        return Err(AppError::bad_request(
            "the order must be a JSON object like {\"steps\": 5}, or an empty body",
        ));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("malformed order JSON ({e})")))?
    };
    let detail = state.orders.create(order).await?;
    let body = json!({ "id": detail.order_id, "order": detail });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    caller.require(Need::Subscribe(Channel::order(&id)))?;
    let detail = state.orders.detail_anywhere(&id).await?;
    Ok(Json(detail).into_response())
}

pub async fn subscribe_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    request: RequestInfo,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    follow(state, id, &caller, request, last_event_id).await
}

/// The seed's own URL: `GET /getOrderDetail?orderId=ID`.
pub async fn seed_order_detail(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    caller: Caller,
    request: RequestInfo,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    let id = query
        .get("orderId")
        .ok_or_else(|| AppError::bad_request("missing ?orderId="))?;
    follow(state, id.clone(), &caller, request, last_event_id).await
}

async fn follow(
    state: AppState,
    id: String,
    caller: &Caller,
    request: RequestInfo,
    last_event_id: Option<u64>,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let grant = caller.require(Need::Subscribe(Channel::order(&id)))?;
    let subscription = match state
        .orders
        .subscribe(&id, last_event_id, subscriber_meta(&request))
        .await
    {
        Ok(subscription) => subscription,
        Err(OrderError::Finished) => {
            tracing::info!(order = id, "order already finished: 204 stops the browser");
            return Ok(stop_reconnecting());
        }
        Err(other) => return Err(other.into()),
    };
    serve_subscription(
        &state,
        &request,
        "/sse/orders",
        last_event_id,
        subscription,
        ("order_id", &id),
        grant,
    )
}
