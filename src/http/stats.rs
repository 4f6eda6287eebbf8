//! What the dashboard shows, as JSON (`/api/stats`) and as a live SSE feed (`/sse/stats`):
//! open streams per listener and protocol, connections, streams per connection, opened and
//! closed per second, close reasons, Last-Event-ID reconnects, hub sizes, refusals.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio_stream::wrappers::IntervalStream;

use super::streaming;
use super::{AppError, AppState};
use crate::server::{ListenerKind, RequestInfo};
use crate::sse::{self, Frame, Lifetime, Out, StreamStats, names};

/// The dashboard's refresh period.
const STATS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub streams: StreamStats,
    pub connections: serde_json::Value,
    pub hub: serde_json::Value,
    pub orders_running: usize,
    /// Refusals a later try can pass, by reason, then by answer (`stream`, `status`); only
    /// reasons that happened.
    pub refusals: serde_json::Value,
}

pub fn snapshot(state: &AppState) -> Stats {
    let open = state.connections.open();
    let open_by_listener: serde_json::Map<String, serde_json::Value> = ListenerKind::ALL
        .iter()
        .map(|kind| (kind.name().to_string(), open[kind.index()].into()))
        .collect();
    Stats {
        streams: state.streams.stats(),
        connections: json!({
            "open": open_by_listener,
            "open_total": open.iter().sum::<u64>(),
            "accepted_total": state.connections.accepted(),
        }),
        hub: json!({
            "sessions": state.hub.session_count(),
            "topics": state.hub.topic_count(),
        }),
        orders_running: state.orders.running(),
        refusals: refusal_counts(state),
    }
}

fn refusal_counts(state: &AppState) -> serde_json::Value {
    let mut by_reason = serde_json::Map::new();
    for (reason, answer, n) in state.responses.refusals() {
        if n > 0 {
            let entry = by_reason
                .entry(reason.as_str())
                .or_insert_with(|| json!({ "stream": 0, "status": 0 }));
            entry[answer.as_str()] = n.into();
        }
    }
    by_reason.into()
}

pub async fn api_stats(State(state): State<AppState>) -> Response {
    Json(snapshot(&state)).into_response()
}

/// `event: stats` once a second, with opened/closed per second since the previous one.
pub async fn sse_stats(
    State(state): State<AppState>,
    request: RequestInfo,
) -> Result<Response, AppError> {
    let guard = state.streams.open(&request, "/sse/stats", false)?;
    // Drawn once: every frame of this stream repeats the same `retry:`.
    let retry = state.settings.retry.for_stream(None);
    let mut previous: Option<(u64, u64)> = None;
    let content = IntervalStream::new(tokio::time::interval(STATS_EVERY)).map(move |_| {
        let stats = snapshot(&state);
        let totals = (stats.streams.opened_total, stats.streams.closed_total);
        let (opened, closed) = previous.map_or((0, 0), |(o, c)| (totals.0 - o, totals.1 - c));
        previous = Some(totals);
        let mut data = serde_json::to_value(&stats).unwrap_or_default();
        data["rates"] = json!({ "opened_per_sec": opened, "closed_per_sec": closed });
        Out::Send(
            Frame::new()
                .retry(retry.first_ms)
                .event(&names::STATS)
                .data(&data.to_string())
                .finish(),
        )
    });
    let lifetime = Lifetime {
        keepalive: None,
        timeout: None,
        token_expiry: None,
        retry,
    };
    Ok(streaming::response(sse::drive(content, guard, lifetime)))
}
