//! `GET /sse/hello`: the seed's clock, one event per tick with the local time, made to show
//! the stream timeout and the browser's reconnect.
//!
//! Each tick carries an increasing `id:`; a reconnect with `Last-Event-ID: n` continues at
//! n+1, so a lost tick would show as a gap in the ids. The stream ends after `timeout`
//! (the seed's 30 s by default, `?timeout=` to change, 0 = never) and the browser reconnects
//! after the `retry:` sent in the first frame.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::IntervalStream;

use crate::app::AppState;
use crate::config::{MAX_RETRY_MS, MAX_TIMEOUT_SECS, nonzero_secs};
use crate::conn::RequestInfo;
use crate::error::AppError;
use crate::params;
use crate::sse::{self, Frame, Lifetime, Out};

/// The seed's `yyyy-MM-dd HH:mm:ss`.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub fn local_time() -> String {
    chrono::Local::now().format(TIME_FORMAT).to_string()
}

/// Numbered ticks: `(id, local time)`, the first one at once, then one per `tick`.
pub fn ticks(first_id: u64, tick: Duration) -> impl Stream<Item = (u64, String)> + Send {
    let mut interval = tokio::time::interval(tick);
    // A stalled client must not get a burst of stale ticks when it catches up.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    IntervalStream::new(interval)
        .enumerate()
        .map(move |(n, _)| (first_id + n as u64, local_time()))
}

/// The stream's first frame also carries `retry:`; later ones only id and data.
pub fn tick_frame(id: u64, time: &str, retry_ms: Option<u64>) -> Out {
    let frame = match retry_ms {
        Some(ms) => Frame::new().retry(ms),
        None => Frame::new(),
    };
    Out::Send(frame.id(id).data(time).finish())
}

/// Where a (re)connecting client continues: after its `Last-Event-ID`, or at 1.
pub fn first_id(headers: &HeaderMap) -> Result<u64, AppError> {
    Ok(params::last_event_id(headers)?.map_or(1, |last| last.saturating_add(1)))
}

pub async fn hello(
    State(state): State<AppState>,
    request: RequestInfo,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let settings = &state.settings;
    let timeout = match params::bounded_u64(&query, "timeout", MAX_TIMEOUT_SECS, "seconds")? {
        Some(secs) => nonzero_secs(secs),
        None => settings.timeout,
    };
    let retry_ms = params::bounded_u64(&query, "retry", MAX_RETRY_MS, "milliseconds")?
        .unwrap_or(settings.retry_ms);
    let first = first_id(&headers)?;
    let guard = state.streams.open(&request, "/sse/hello")?;

    let content = ticks(first, settings.tick).map(move |(id, time)| {
        let retry = (id == first).then_some(retry_ms);
        tick_frame(id, &time, retry)
    });
    let lifetime = Lifetime {
        keepalive: settings.keepalive,
        timeout,
    };
    Ok(sse::response(sse::drive(content, guard, lifetime)))
}
