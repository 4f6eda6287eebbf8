//! Turning SSE content into answers: the response every stream carries, the `connected`
//! event every stream starts with, and serving a pub/sub subscription (sessions, topics and
//! orders alike).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;

use super::{AppError, AppState};
use crate::auth::Grant;
use crate::pubsub::fanout::{DropTransport, SubscriberMeta, Subscription};
use crate::pubsub::multi::Topics;
use crate::server::RequestInfo;
use crate::sse::{self, Frame, Lifetime, Out, TokenExpiry, names};

/// A 200 `text/event-stream` response with the headers every SSE answer carries.
pub fn response<S>(body: S) -> Response
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// 204 No Content: the one answer that makes an EventSource stop reconnecting.
pub fn stop_reconnecting() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// What the first event of a stream says besides how the request arrived.
#[derive(Debug, Clone, Default)]
pub struct Connected<'a> {
    /// `retry:`, the reconnect delay the browser is told to use: the stream's
    /// [`StreamRetry::first_ms`](crate::sse::StreamRetry::first_ms).
    pub retry_ms: u64,
    /// `id:` of the frame: a subscription's cursor, so its first reconnect already carries
    /// a `Last-Event-ID`; `None` (the clocks) leaves the browser's Last-Event-ID alone.
    pub id: Option<&'a str>,
    /// The `Last-Event-ID` the server received: a number, or a stream of many topics' cursor.
    pub last_event_id: Option<serde_json::Value>,
    /// Events sent again before live ones.
    pub replayed: usize,
    /// What the stream follows: `("session", id)`, `("topic", name)`, `("order_id", id)`,
    /// `("topics", [{topic, cursor, replayed}…])`.
    pub follows: Option<(&'static str, serde_json::Value)>,
}

/// The first frame of every stream: `retry:`, and `event: connected` with one JSON shape
/// for every endpoint — protocol, connection, listener, the Last-Event-ID received, how many
/// events are replayed, and what the stream follows.
pub fn connected_frame(request: &RequestInfo, connected: Connected<'_>) -> Bytes {
    let mut data = json!({
        "protocol": request.protocol(),
        "connection_id": request.connection_id,
        "listener": request.listener_name(),
        "last_event_id": connected.last_event_id,
        "replayed": connected.replayed,
    });
    if let Some((key, value)) = connected.follows {
        data[key] = value;
    }
    let mut frame = Frame::new().retry(connected.retry_ms);
    if let Some(id) = connected.id {
        frame = frame.id_text(id);
    }
    frame
        .event(&names::CONNECTED)
        .data(&data.to_string())
        .finish()
}

/// Who is subscribing, for listings, and how to cut its transport if it falls behind.
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

/// When a stream let through with `grant` must end: the first instant its token is refused,
/// from now on the Unix clock (the clock tokens are checked against), so that the stream's
/// end and its reconnect's 401 agree.
pub fn token_expiry(grant: Grant) -> Option<TokenExpiry> {
    let expiry = grant.expiry?;
    let ends_in = match expiry.refused_from() {
        None => return None,
        Some(at) => at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(TokenExpiry {
        exp: expiry.exp,
        ends_in,
    })
}

/// Count the stream in and answer with the subscription: `connected` (with `id:` at the
/// subscriber's cursor), then its replay and live events, until its token (per `grant`)
/// stops being accepted.
pub fn serve_subscription(
    state: &AppState,
    request: &RequestInfo,
    path: &str,
    last_event_id: Option<u64>,
    subscription: Subscription,
    (kind, name): (&'static str, &str),
    grant: Grant,
) -> Result<Response, AppError> {
    let cursor = subscription.cursor.to_string();
    let connected = Connected {
        id: Some(&cursor),
        last_event_id: last_event_id.map(Into::into),
        replayed: subscription.replay_len(),
        follows: Some((kind, name.into())),
        ..Connected::default()
    };
    let ends = StreamEnds {
        grant,
        ..StreamEnds::default()
    };
    serve(
        state,
        request,
        path,
        connected,
        subscription.into_stream(),
        ends,
    )
}

/// When a subscription's stream ends by itself: when its token (per `grant`) stops being
/// accepted, and after `timeout` if asked (`?timeout=`: a planned reconnect, after the
/// `retry:` asked with `?retry=`, if any).
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamEnds {
    pub grant: Grant,
    pub timeout: Option<Duration>,
    pub retry_ms: Option<u64>,
}

/// [`serve_subscription`] for a stream of many topics: `connected` names each topic with its
/// cursor and replay, and its `id:` is the stream's cursor.
pub fn serve_topics(
    state: &AppState,
    request: &RequestInfo,
    last_event_id: Option<&str>,
    topics: Topics,
    ends: StreamEnds,
) -> Result<Response, AppError> {
    let cursor = topics.cursor();
    let each: Vec<serde_json::Value> = topics
        .starts()
        .map(|t| json!({ "topic": t.name, "cursor": t.cursor, "replayed": t.replayed }))
        .collect();
    let connected = Connected {
        id: Some(&cursor),
        last_event_id: last_event_id.map(Into::into),
        replayed: topics.replay_len(),
        follows: Some(("topics", each.into())),
        ..Connected::default()
    };
    serve(
        state,
        request,
        "/sse/topics",
        connected,
        topics.into_stream(),
        ends,
    )
}

/// Count the stream in and answer: `connected` (with the stream's `retry:`), then `content`,
/// until it `ends`.
fn serve<S>(
    state: &AppState,
    request: &RequestInfo,
    path: &str,
    connected: Connected<'_>,
    content: S,
    ends: StreamEnds,
) -> Result<Response, AppError>
where
    S: Stream<Item = Out> + Send + 'static,
{
    let resumed = connected.last_event_id.is_some();
    let guard = state.streams.open(request, path, resumed)?;
    let retry = state.settings.retry.for_stream(ends.retry_ms);
    let first = connected_frame(
        request,
        Connected {
            retry_ms: retry.first_ms,
            ..connected
        },
    );
    let content = futures_util::stream::once(async move { Out::Send(first) }).chain(content);
    let lifetime = Lifetime {
        keepalive: state.settings.keepalive,
        timeout: ends.timeout,
        token_expiry: token_expiry(ends.grant),
        retry,
    };
    Ok(response(sse::drive(content, guard, lifetime)))
}
