//! The hub over HTTP: subscribe to sessions and topics as SSE, post events, list, delete.
//! Handlers only translate; the rules live in [`crate::hub`].

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;

use crate::app::AppState;
use crate::conn::RequestInfo;
use crate::error::AppError;
use crate::fanout::{DropTransport, SubscriberMeta, Subscription};
use crate::hub::HubError;
use crate::params;
use crate::posted::PostedEvent;
use crate::sse::{self, EventName, Frame, Lifetime, Out};
use crate::streams::StreamGuard;

impl From<HubError> for AppError {
    fn from(error: HubError) -> Self {
        match error {
            HubError::NotFound => {
                AppError::not_found("no such session (never subscribed, expired, or deleted)")
            }
            HubError::Gone => AppError::new(StatusCode::NO_CONTENT, ""),
            HubError::Conflict => AppError::new(
                StatusCode::CONFLICT,
                "this session id is already connected (--same-id reject)",
            ),
            HubError::Full { what, max } => {
                AppError::unavailable(format!("{what} {max} reached; retry later"), 5)
            }
        }
    }
}

pub fn subscriber_meta(request: &RequestInfo) -> SubscriberMeta {
    // One stream per HTTP/1.1 connection: closing it cuts exactly this subscriber. An
    // HTTP/2 connection carries other streams, so a slow HTTP/2 stream ends when read.
    let drop_transport = match (request.version, &request.connection) {
        (Version::HTTP_11 | Version::HTTP_10, Some(connection)) => {
            let connection = connection.clone();
            Some(DropTransport(Arc::new(move || connection.shutdown())))
        }
        _ => None,
    };
    SubscriberMeta {
        protocol: request.protocol(),
        listener: request.listener_name(),
        connection_id: request.connection_id,
        connected_at: SystemTime::now(),
        drop_transport,
    }
}

/// Count the stream in and answer with the subscription. Its `connected` event says how it
/// is served and names what it follows (`("session", id)`, `("topic", name)`…).
pub fn serve_subscription(
    state: &AppState,
    request: &RequestInfo,
    path: &str,
    resumed: bool,
    subscription: Subscription,
    follows: (&str, &str),
) -> Result<Response, AppError> {
    let guard = state.streams.open(request, path, resumed)?;
    let mut connected = json!({
        "protocol": request.protocol(),
        "connection_id": request.connection_id,
        "replayed": subscription.replay_len(),
    });
    connected[follows.0] = follows.1.into();
    Ok(subscription_response(state, subscription, guard, connected))
}

/// The SSE answer for a subscription: `retry:` and `event: connected` (with `id:` at the
/// subscriber's cursor, so its first reconnect already carries a Last-Event-ID), then the
/// subscription's replay and live events.
fn subscription_response(
    state: &AppState,
    subscription: Subscription,
    guard: StreamGuard,
    connected: serde_json::Value,
) -> Response {
    let connected_name = EventName::new("connected").expect("constant name is valid");
    let first = Frame::new()
        .retry(state.settings.retry_ms)
        .id(subscription.cursor)
        .event(&connected_name)
        .data(&connected.to_string())
        .finish();
    let content = futures_util::stream::once(async move { Out::Send(first) })
        .chain(subscription.into_stream());
    let lifetime = Lifetime {
        keepalive: state.settings.keepalive,
        timeout: None,
    };
    sse::response(sse::drive(content, guard, lifetime))
}

pub async fn subscribe_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: RequestInfo,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let last_event_id = params::last_event_id(&headers)?;
    let subscription = match state.hub.subscribe_session(
        &id,
        last_event_id,
        subscriber_meta(&request),
    ) {
        Err(HubError::Gone) => {
            tracing::info!(
                session = id,
                "reconnect to a deleted session: 204 stops the browser"
            );
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Err(HubError::Conflict) => {
            tracing::warn!(session = id, peer = %request.peer_text(), "same id refused: already connected");
            return Err(HubError::Conflict.into());
        }
        other => other?,
    };
    serve_subscription(
        &state,
        &request,
        "/sse/sessions",
        last_event_id.is_some(),
        subscription,
        ("session", &id),
    )
}

pub async fn post_to_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    event: PostedEvent,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let published = state
        .hub
        .publish_session(&id, event.name.as_ref(), &event.data)
        .map_err(|e| match e {
            HubError::NotFound => AppError::not_found(format!(
                "no session {id:?} (never subscribed, or expired after --session-linger)"
            )),
            other => other.into(),
        })?;
    Ok(accepted(
        json!({ "id": published.id, "delivered": published.subscribers > 0 }),
    ))
}

pub async fn broadcast(State(state): State<AppState>, event: PostedEvent) -> Response {
    let sessions = state.hub.broadcast(event.name.as_ref(), &event.data);
    accepted(json!({ "sessions": sessions }))
}

pub async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    state
        .hub
        .delete_session(&id)
        .map_err(|_| AppError::not_found(format!("no session {id:?}")))?;
    Ok(Json(json!({ "session": id, "deleted": true })).into_response())
}

pub async fn list_sessions(State(state): State<AppState>) -> Response {
    let sessions = state.hub.sessions();
    let connected = sessions.iter().filter(|s| s.connected).count();
    Json(json!({ "total": sessions.len(), "connected": connected, "sessions": sessions }))
        .into_response()
}

pub async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let session = state
        .hub
        .session(&id)
        .ok_or_else(|| AppError::not_found(format!("no session {id:?}")))?;
    Ok(Json(session).into_response())
}

pub async fn subscribe_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: RequestInfo,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let name = params::client_id(&name)?;
    let last_event_id = params::last_event_id(&headers)?;
    let subscription =
        state
            .hub
            .subscribe_topic(&name, last_event_id, subscriber_meta(&request))?;
    serve_subscription(
        &state,
        &request,
        "/sse/topics",
        last_event_id.is_some(),
        subscription,
        ("topic", &name),
    )
}

pub async fn post_to_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    event: PostedEvent,
) -> Result<Response, AppError> {
    let name = params::client_id(&name)?;
    let published = state
        .hub
        .publish_topic(&name, event.name.as_ref(), &event.data)?;
    Ok(accepted(
        json!({ "id": published.id, "subscribers": published.subscribers }),
    ))
}

pub async fn list_topics(State(state): State<AppState>) -> Response {
    let topics = state.hub.topics();
    Json(json!({ "total": topics.len(), "topics": topics })).into_response()
}

fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
