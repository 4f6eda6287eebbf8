//! `GET /sse/hello`: the seed's clock, one event per tick with the local time, made to show
//! the stream timeout and the browser's reconnect.
//!
//! Each tick carries an increasing `id:`; a reconnect with `Last-Event-ID: n` continues at
//! n+1, so a lost tick would show as a gap in the ids. The stream ends after `timeout`
//! (the seed's 30 s by default, `?timeout=` to change, 0 = never) and the browser reconnects
//! after the `retry:` sent in the first frame. `?slots=N&group=G` holds the stream to the
//! lab's own cap ([`super::lab_slots`]), for its "refused" scenario.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::IntervalStream;

use super::lab_slots::{MAX_SLOTS, Slot};
use super::params::{self, LastEventId};
use super::streaming::{self, Connected, connected_frame};
use super::{AppError, AppState};
use crate::server::RequestInfo;
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

/// One tick: the id and the local time.
pub fn tick_frame(id: u64, time: &str) -> Out {
    Out::Send(Frame::new().id(id).data(time).finish())
}

/// The first frame of a clock stream: `connected` without `id:`, so it does not move the
/// browser's Last-Event-ID (the ticks carry the ids).
pub fn clock_connected(request: &RequestInfo, retry_ms: u64, last_event_id: Option<u64>) -> Out {
    Out::Send(connected_frame(
        request,
        Connected {
            retry_ms,
            last_event_id: last_event_id.map(Into::into),
            ..Connected::default()
        },
    ))
}

/// Where a (re)connecting client continues: after its `Last-Event-ID`, or at 1.
pub fn first_id(last_event_id: Option<u64>) -> u64 {
    last_event_id.map_or(1, |last| last.saturating_add(1))
}

pub async fn hello(
    State(state): State<AppState>,
    request: RequestInfo,
    Query(query): Query<HashMap<String, String>>,
    LastEventId(last_event_id): LastEventId,
) -> Result<Response, AppError> {
    let settings = &state.settings;
    let timeout = params::requested_timeout(&query)?.unwrap_or(settings.timeout);
    let retry = settings.retry.for_stream(params::requested_retry(&query)?);
    let slot = lab_slot(&state, &query)?;
    let guard = state
        .streams
        .open(&request, "/sse/hello", last_event_id.is_some())?;

    let connected = clock_connected(&request, retry.first_ms, last_event_id);
    let content = futures_util::stream::once(async move { connected }).chain(
        ticks(first_id(last_event_id), settings.tick).map(move |(id, time)| {
            // The lab's slot is given back when the body (and this closure) is dropped.
            let _held = &slot;
            tick_frame(id, &time)
        }),
    );
    let lifetime = Lifetime {
        keepalive: settings.keepalive,
        timeout,
        token_expiry: None,
        retry,
    };
    Ok(streaming::response(sse::drive(content, guard, lifetime)))
}

/// `?slots=N&group=G`: a place in the lab's group, held for the stream's life.
fn lab_slot(state: &AppState, query: &HashMap<String, String>) -> Result<Option<Slot>, AppError> {
    let slots = params::bounded_u64(query, "slots", MAX_SLOTS, "streams")?;
    match (slots, query.get("group")) {
        (None, None) => Ok(None),
        (Some(slots), Some(group)) if slots > 0 => state.lab_slots.take(group, slots).map(Some),
        _ => Err(AppError::bad_request(format!(
            "slots (1 to {MAX_SLOTS}) and group go together"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::time::Instant;

    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn the_first_tick_comes_at_once_then_one_per_period_numbered_on() {
        let start = Instant::now();
        let ticks: Vec<(u64, Duration)> = ticks(42, TICK)
            .take(35)
            .map(|(id, _)| (id, start.elapsed()))
            .collect()
            .await;
        let expected: Vec<(u64, Duration)> = (0..35).map(|n| (42 + n, TICK * n as u32)).collect();
        assert_eq!(ticks, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stalls_gets_no_burst_of_stale_ticks() {
        let mut ticks = Box::pin(ticks(1, TICK));
        assert_eq!(ticks.next().await.map(|(id, _)| id), Some(1));
        tokio::time::sleep(TICK * 10).await;
        let caught_up = Instant::now();
        assert_eq!(
            ticks.next().await.map(|(id, _)| id),
            Some(2),
            "late, at once"
        );
        assert_eq!(ticks.next().await.map(|(id, _)| id), Some(3));
        assert_eq!(
            caught_up.elapsed(),
            TICK,
            "then a period later, not at once"
        );
    }
}
