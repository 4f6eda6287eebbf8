//! The hub over HTTP: subscribe to sessions and topics as SSE, post events, list, delete.
//! Handlers only translate; the rules live in [`crate::pubsub::hub`], and who may do what
//! in [`crate::auth`]: subscribing needs a `subscribe` grant for `sessions/ID` or
//! `topics/NAME` (or a public topic), posting a `publish` grant, and broadcasting, listing
//! and deleting `admin`.

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::caller::Caller;
use super::params::{self, LastEventId};
use super::posted::PostedEvent;
use super::streaming::{serve_subscription, serve_topics, stop_reconnecting, subscriber_meta};
use super::{AppError, AppState};
use crate::auth::{Channel, Need};
use crate::pubsub::hub::HubError;
use crate::pubsub::multi::Cursor;
use crate::server::RequestInfo;
use crate::sse::EventName;

pub async fn subscribe_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    request: RequestInfo,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    let grant = caller.require(Need::Subscribe(Channel::session(&id)))?;
    let subscription = match state
        .hub
        .subscribe_session(&id, last_event_id, subscriber_meta(&request))
        .await
    {
        Err(HubError::Gone) => {
            tracing::info!(
                session = id,
                "reconnect to a deleted session: 204 stops the browser"
            );
            return Ok(stop_reconnecting());
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
        last_event_id,
        subscription,
        ("session", &id),
        grant,
    )
}

pub async fn post_to_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Request,
) -> Result<Response, AppError> {
    let id = params::client_id(&id)?;
    caller.require(Need::Publish(Channel::session(&id)))?;
    // Read after the check: a refused publisher gets 401/403, not a verdict on its body.
    let event = PostedEvent::from_request(body, &state).await?;
    let published = state
        .hub
        .publish_session(&id, event.name.as_ref(), &event.data)
        .await?;
    Ok(accepted(
        json!({ "id": published.id, "delivered": published.subscribers > 0 }),
    ))
}

pub async fn broadcast(
    State(state): State<AppState>,
    caller: Caller,
    body: Request,
) -> Result<Response, AppError> {
    caller.require(Need::Admin)?;
    let event = PostedEvent::from_request(body, &state).await?;
    let sessions = state
        .hub
        .broadcast(event.name.as_ref(), &event.data)
        .await?;
    Ok(accepted(json!({ "sessions": sessions })))
}

pub async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require(Need::Admin)?;
    let id = params::client_id(&id)?;
    state.hub.delete_session(&id).await?;
    Ok(Json(json!({ "session": id, "deleted": true })).into_response())
}

pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require(Need::Admin)?;
    let sessions = state.hub.sessions();
    let connected = sessions.iter().filter(|s| s.connected).count();
    Ok(
        Json(json!({ "total": sessions.len(), "connected": connected, "sessions": sessions }))
            .into_response(),
    )
}

pub async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require(Need::Admin)?;
    let id = params::client_id(&id)?;
    let session = state.hub.session(&id).ok_or(HubError::NotFound {
        what: "session",
        id: id.clone(),
    })?;
    Ok(Json(session).into_response())
}

pub async fn subscribe_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    request: RequestInfo,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    let name = params::client_id(&name)?;
    let grant = caller.require(Need::Subscribe(Channel::topic(&name)))?;
    let subscription = state
        .hub
        .subscribe_topic(&name, last_event_id, subscriber_meta(&request))
        .await?;
    serve_subscription(
        &state,
        &request,
        "/sse/topics",
        last_event_id,
        subscription,
        ("topic", &name),
        grant,
    )
}

/// `GET /sse/topics?topic=a&topic=b…`: one stream of every listed topic (see
/// [`crate::pubsub::multi`]), resumed from the cursor a reconnect hands back; `?timeout=`
/// and `?retry=` as on the clocks.
pub async fn subscribe_topics(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestInfo,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let names = params::topic_names(&uri, state.settings.max_topics_per_stream)?;
    let mut ends = params::stream_ends(&uri)?;
    for name in &names {
        let grant = caller.require(Need::Subscribe(Channel::topic(name.as_str())))?;
        ends.grant = ends.grant.and(grant);
    }
    let resume = params::last_event_text(&headers, &uri);
    let from = match &resume {
        None => vec![None; names.len()],
        Some((source, text)) => {
            let cursor = Cursor::parse(text).map_err(|e| {
                AppError::bad_request(format!(
                    "{source} is not an id this stream gave ({e}); send one back unchanged, or none"
                ))
            })?;
            let names: Vec<&str> = names.iter().map(EventName::as_str).collect();
            cursor.ids_for(&names)
        }
    };
    let topics = state
        .hub
        .subscribe_topics(&names, &from, subscriber_meta(&request))
        .await?;
    let last_event_id = resume.as_ref().map(|(_, text)| text.trim());
    serve_topics(&state, &request, last_event_id, topics, ends)
}

pub async fn post_to_topic(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    body: Request,
) -> Result<Response, AppError> {
    let name = params::client_id(&name)?;
    caller.require(Need::Publish(Channel::topic(&name)))?;
    let event = PostedEvent::from_request(body, &state).await?;
    let published = state
        .hub
        .publish_topic(&name, event.name.as_ref(), &event.data)
        .await?;
    Ok(accepted(
        json!({ "id": published.id, "subscribers": published.subscribers }),
    ))
}

pub async fn list_topics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, AppError> {
    caller.require(Need::Admin)?;
    let topics = state.hub.topics();
    Ok(Json(json!({ "total": topics.len(), "topics": topics })).into_response())
}

fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
