//! What a refusal does to an EventSource, both ways at once, on the lab's slot groups
//! (`/sse/hello?slots=1&group=G`, a cap of one stream per group, `src/http/lab_slots.rs`):
//! in each group a holder page takes the one place for 3 s, and a second page is refused,
//! once answered with a `503` (`refusals=status`) and once with sselab's refusal stream
//! (`refusals=stream`). The 503 page is read after the place freed and the refusal's
//! `Retry-After` passed: CLOSED for good, or not. The stream page is timed until it ticks.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::model::{Run, values};
use super::until;
use crate::browser::{Engine, LabBrowser, Tab, eval};
use crate::http::lab_slots::LAB_RETRY_AFTER_SECS;

/// The holder's stream ends after this, and it comes back only after [`HOLDER_RETRY`]: the
/// refused page has the freed place to itself for a while.
const HOLDER_TIMEOUT: &str = "3";
const HOLDER_RETRY: &str = "6000";

/// The longest wait for any one step.
const WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Clock {
    ready_state: u8,
    events: u64,
    refusals: u64,
    opens: u64,
}

pub async fn run(profile: &LabBrowser, origin: &str, engine: Engine) -> anyhow::Result<Vec<Run>> {
    // A group per engine and run: nothing else on the server holds its place.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let group = |answer: &str| format!("report-{engine}-{answer}-{nonce}");
    let page = |group: &str, extra: &str| format!("{origin}/?slots=1&group={group}{extra}");
    let holder_extra = format!("&timeout={HOLDER_TIMEOUT}&retry={HOLDER_RETRY}");
    let (status_group, stream_group) = (group("status"), group("stream"));
    let status_holder = profile.page(&page(&status_group, &holder_extra)).await?;
    let stream_holder = profile.page(&page(&stream_group, &holder_extra)).await?;
    for holder in [&status_holder, &stream_holder] {
        until(holder, "window.sselab.events > 0", WITHIN).await?;
    }
    let status = profile
        .page(&page(&status_group, "&refusals=status"))
        .await?;
    let stream = profile
        .page(&page(&stream_group, "&refusals=stream"))
        .await?;
    let (status_run, stream_run) = tokio::join!(
        answered_503(&status, &status_holder),
        answered_with_a_stream(&stream)
    );
    let (closed_after, status) = status_run?;
    let (ticking_after, stream) = stream_run?;
    Ok(vec![values([
        (
            "status_ready_state",
            json!(ready_state(status.ready_state)),
            "state",
        ),
        (
            "status_closed_after_ms",
            json!(closed_after.map(|d| d.as_millis() as u64)),
            "ms",
        ),
        ("status_events", json!(status.events), "events"),
        ("status_opens", json!(status.opens), "opens"),
        (
            "stream_ready_state",
            json!(ready_state(stream.ready_state)),
            "state",
        ),
        ("stream_refusals", json!(stream.refusals), "refused events"),
        (
            "stream_ticking_after_ms",
            json!(ticking_after.as_millis() as u64),
            "ms",
        ),
        ("stream_events", json!(stream.events), "events"),
    ])])
}

/// The 503 page: when it closed (if it did), and how it is once the holder's place freed and
/// the refusal's Retry-After passed.
async fn answered_503(page: &Tab, holder: &Tab) -> anyhow::Result<(Option<Duration>, Clock)> {
    let closed = until(page, "window.sselab.readyState === 2", WITHIN)
        .await
        .ok();
    until(holder, "window.sselab.errors > 0", WITHIN).await?;
    tokio::time::sleep(Duration::from_secs(LAB_RETRY_AFTER_SECS) + Duration::from_millis(500))
        .await;
    Ok((closed, eval(page, "window.sselab").await?))
}

/// The refusal-stream page: how long until it ticks.
async fn answered_with_a_stream(page: &Tab) -> anyhow::Result<(Duration, Clock)> {
    let ticking = until(page, "window.sselab.events > 0", WITHIN).await?;
    Ok((ticking, eval(page, "window.sselab").await?))
}

/// An EventSource's readyState in words.
fn ready_state(state: u8) -> &'static str {
    match state {
        0 => "CONNECTING",
        1 => "OPEN",
        2 => "CLOSED",
        _ => "unknown",
    }
}
