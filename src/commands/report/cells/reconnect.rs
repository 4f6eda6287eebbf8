//! `?timeout=3&retry=1500` on the clock page over plain HTTP/1.1: the server ends the stream
//! after 3 s, and the browser comes back after `retry:` with the last id it received in
//! `Last-Event-ID`. Read from the page (`window.sselab`): the delay from the error to the
//! reopened stream, the id the server got, and whether the next tick continued right after it.
//! The repeats run side by side, a page each, so they cost one wait.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::model::{Run, values};
use super::until;
use crate::browser::{LabBrowser, RECONNECTED_AND_TICKING, Tab, eval};

/// The stream's end (3 s), the retry (1.5 s) and two ticks, with room for a busy machine.
const WITHIN: Duration = Duration::from_secs(20);

/// What the clock page says of its reconnect.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Clock {
    reconnect_delays_ms: Vec<f64>,
    last_event_id_sent: Vec<Option<u64>>,
    ids: Vec<u64>,
    gaps: u64,
    protocol: Option<String>,
}

pub async fn run(profile: &LabBrowser, origin: &str, quick: bool) -> anyhow::Result<Vec<Run>> {
    let pages = if quick { 1 } else { 3 };
    let url = format!("{origin}/?timeout=3&retry=1500");
    let mut tabs = Vec::with_capacity(pages);
    for _ in 0..pages {
        tabs.push(profile.page(&url).await?);
    }
    let runs = futures_util::future::join_all(tabs.iter().map(read)).await;
    runs.into_iter().collect()
}

async fn read(page: &Tab) -> anyhow::Result<Run> {
    until(page, RECONNECTED_AND_TICKING, WITHIN).await?;
    let clock: Clock = eval(page, "window.sselab").await?;
    let delay = clock
        .reconnect_delays_ms
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("the page timed no reconnect"))?;
    let sent = clock.last_event_id_sent.get(1).copied().flatten();
    // The id sent is one the page received, and the next tick is the one right after it.
    let continued = sent.is_some_and(|sent| {
        let at = clock.ids.iter().position(|id| *id == sent);
        at.and_then(|at| clock.ids.get(at + 1)) == Some(&(sent + 1))
    });
    Ok(values([
        ("reconnect_ms", json!(delay.round() as u64), "ms"),
        ("last_event_id", json!(sent), "id"),
        (
            "first_connect_sent_id",
            json!(clock.last_event_id_sent.first().copied().flatten()),
            "id",
        ),
        ("continued_after_it", json!(continued), "bool"),
        ("gaps", json!(clock.gaps), "ids"),
        ("protocol", json!(clock.protocol), "protocol"),
    ]))
}
