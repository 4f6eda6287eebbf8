//! Do tabs of different sites share the browser's six connections to one third-party SSE
//! host? A page of one site (`localhost`) opens [`STREAMS`] EventSources to a third origin
//! (`127.0.0.1`, CORS allowed), and once they settled a page of another site (`127.0.0.2`: a
//! site ignores the port) opens as many to the same origin. One pool for the host: the second
//! page's streams wait behind the first's six. A pool per top-level site: they open too.
//! Connections are the server's ids, so every engine is counted the same way.

use std::time::Duration;

use serde_json::json;

use super::super::model::{Run, values};
use super::super::servers::Lab;
use crate::browser::LabBrowser;

/// Streams each page opens: more than the six an HTTP/1.1 host gets, so a wall shows.
const STREAMS: usize = 8;

/// The longest wait for a page's streams to settle. The second page's may never open (one
/// shared pool): then the whole wait is spent, so it is short.
const SETTLE: Duration = Duration::from_secs(6);

/// `third_origin` is `third`'s plain HTTP listener on 127.0.0.1.
pub async fn run(
    profile: &LabBrowser,
    third: &Lab,
    third_origin: &str,
    second_site: &Lab,
) -> anyhow::Result<Vec<Run>> {
    third.until_idle(Duration::from_secs(5)).await;
    let second_origin = second_site
        .http
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the second site has no plain HTTP listener"))?;
    // The first site: the same server by another name, so another site and another host.
    let first_origin = third_origin.replacen("127.0.0.1", "localhost", 1);
    anyhow::ensure!(
        first_origin != third_origin,
        "the third origin {third_origin} is not on 127.0.0.1"
    );
    let streams_url = format!("{third_origin}/sse/hello");
    let first = profile.page(&format!("{first_origin}/proto")).await?;
    first.open_event_sources(&streams_url, STREAMS).await?;
    let (first_alone, _) = first.settle_event_sources(SETTLE).await?;
    let second = profile.page(&format!("{second_origin}/proto")).await?;
    second.open_event_sources(&streams_url, STREAMS).await?;
    let (second_streams, _) = second.settle_event_sources(SETTLE).await?;
    let first_streams = first.event_sources().await?;
    let mut connections = first_streams.connection_ids.clone();
    connections.extend(&second_streams.connection_ids);
    connections.sort_unstable();
    connections.dedup();
    let pool = if second_streams.open == 0 && first_alone.open > 0 {
        "shared"
    } else if second_streams.open > 0 && first_streams.open > 0 {
        "per-site"
    } else {
        "unclear"
    };
    Ok(vec![values([
        ("streams_per_page", json!(STREAMS), "streams"),
        ("first_site_open", json!(first_streams.open), "streams"),
        ("second_site_open", json!(second_streams.open), "streams"),
        ("connections", json!(connections.len()), "connections"),
        (
            "server_streams",
            json!(third.open_streams().await.ok()),
            "streams",
        ),
        ("pool", json!(pool), "verdict"),
    ])])
}
