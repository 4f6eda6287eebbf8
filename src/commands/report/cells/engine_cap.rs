//! The engine's own cap on concurrent streams per HTTP/2 connection: one page opens
//! [`STREAMS`] EventSources to a server that allows [`WIDE_CAP`](super::super::servers::WIDE_CAP)
//! per connection, and counts how many open and on how many connections. Measured, not
//! assumed: an engine may queue the rest on its one connection or open another.

use std::time::Duration;

use serde_json::json;

use super::super::model::{Run, values};
use super::super::servers::Lab;
use crate::browser::LabBrowser;

/// Streams asked for: above the caps engines are known to have (Chromium's 256), within the
/// issue's 150–300.
const STREAMS: usize = 300;

/// The longest wait for them to settle.
const SETTLE: Duration = Duration::from_secs(30);

pub async fn run(profile: &LabBrowser, lab: &Lab, origin: &str) -> anyhow::Result<Vec<Run>> {
    lab.until_idle(Duration::from_secs(5)).await;
    let page = profile.page(&format!("{origin}/proto")).await?;
    page.open_event_sources(&format!("{origin}/sse/hello"), STREAMS)
        .await?;
    let (streams, settled) = page.settle_event_sources(SETTLE).await?;
    let server_streams = lab.open_streams().await.ok();
    // A cap shows as streams left waiting while one connection holds the rest; with none
    // waiting, the engine has none up to the number asked for.
    let own_cap = if streams.connecting > 0 {
        json!(streams.busiest_connection)
    } else {
        json!(format!("none up to {}", streams.asked))
    };
    Ok(vec![values([
        ("own_cap", own_cap, "streams"),
        ("asked", json!(streams.asked), "streams"),
        ("open", json!(streams.open), "streams"),
        ("connecting", json!(streams.connecting), "streams"),
        ("closed", json!(streams.closed), "streams"),
        ("connections", json!(streams.connections()), "connections"),
        (
            "busiest_connection",
            json!(streams.busiest_connection),
            "streams",
        ),
        ("protocol", json!(streams.protocols.join("+")), "protocol"),
        ("server_streams", json!(server_streams), "streams"),
        (
            "settled_ms",
            json!(settled.map(|d| d.as_millis() as u64)),
            "ms",
        ),
    ])])
}
