//! `GET /sse/demo?id=ID`: the seed's session-managed clock that ends by itself at the next
//! whole minute, with a final `event: end`.
//!
//! The seed's version closed the stream and the browser reconnected forever. Here an id
//! whose clock has ended is remembered, and its reconnect gets **204 No Content**, the
//! standard way to tell an EventSource to stop.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Timelike;
use futures_util::{StreamExt, stream};

use super::clock::{clock_connected, first_id, tick_frame, ticks};
use super::params::{self, LastEventId};
use super::streaming::{self, stop_reconnecting};
use super::{AppError, AppState};
use crate::pubsub::tombstones::Tombstones;
use crate::server::RequestInfo;
use crate::sse::{self, CloseReason, Frame, Lifetime, Out, names};

/// How many ended ids are remembered, and for how long, so memory stays bounded.
const ENDED_CAPACITY: usize = 10_000;
const ENDED_TTL: Duration = Duration::from_secs(3600);

/// Ids whose demo clock has ended.
pub fn ended_demos() -> Tombstones {
    Tombstones::new(ENDED_CAPACITY, ENDED_TTL)
}

/// Time from now to the next whole multiple of `period` on the wall clock
/// (60 s: the next whole minute, as the seed).
pub fn until_next_boundary(period: Duration) -> Duration {
    let now = chrono::Local::now();
    let since_midnight = Duration::new(
        u64::from(now.num_seconds_from_midnight()),
        now.nanosecond() % 1_000_000_000,
    );
    let period_nanos = period.as_nanos().max(1);
    let into_period = since_midnight.as_nanos() % period_nanos;
    Duration::from_nanos((period_nanos - into_period) as u64)
}

pub async fn demo(
    State(state): State<AppState>,
    request: RequestInfo,
    Query(query): Query<HashMap<String, String>>,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    let id = params::client_id(
        query
            .get("id")
            .ok_or_else(|| AppError::bad_request("missing ?id= (the demo session id)"))?,
    )?;
    if state.demo.contains(&id) {
        tracing::info!(id, peer = %request.peer_text(), "demo already ended: 204 stops the browser");
        return Ok(stop_reconnecting());
    }
    let settings = &state.settings;
    let retry = settings.retry.for_stream(params::requested_retry(&query)?);
    let guard = state
        .streams
        .open(&request, "/sse/demo", last_event_id.is_some())?;

    let ends_at = tokio::time::Instant::now() + until_next_boundary(settings.demo_period);
    let demo = state.demo.clone();
    let connected = clock_connected(&request, retry.first_ms, last_event_id);
    let content = stream::once(async move { connected }).chain(
        ticks(first_id(last_event_id), settings.tick)
            .take_until(tokio::time::sleep_until(ends_at))
            .map(|(n, time)| tick_frame(n, &time)),
    );
    // After the last tick: the end event, the id remembered, and the stream closed.
    let ending = stream::once(async move {
        demo.insert(&id);
        let frame = Frame::new()
            .event(&names::END)
            .data("the demo clock has reached the whole minute; reconnecting gets 204")
            .finish();
        Out::Send(frame)
    })
    .chain(stream::iter([Out::Close(CloseReason::End)]));
    let lifetime = Lifetime {
        keepalive: settings.keepalive,
        timeout: None,
        token_expiry: None,
        retry,
    };
    Ok(streaming::response(sse::drive(
        content.chain(ending),
        guard,
        lifetime,
    )))
}
