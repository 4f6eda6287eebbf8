//! 10 tabs of the clock page on one listener, read once they settled, then the probe (a
//! `fetch()` from a tab and an 11th tab's page) beside them: the README's first rows.

use std::time::Duration;

use serde_json::json;

use super::super::model::{Run, values};
use super::super::servers::Lab;
use crate::browser::{LabBrowser, ProbeTime};

/// The README's ten tabs.
const TABS: usize = 10;

/// The longest wait for the tabs to settle (they are read as soon as they have).
const SETTLE: Duration = Duration::from_secs(15);

/// How long the server may take to see the last cell's streams end.
const IDLE_WITHIN: Duration = Duration::from_secs(5);

/// How long a probe waits before it counts as blocked: streams never end on the report's
/// servers, so a blocked probe never answers, and one that is not takes milliseconds.
fn probe_timeout(quick: bool) -> Duration {
    Duration::from_secs(if quick { 3 } else { 5 })
}

pub async fn run(
    profile: &LabBrowser,
    lab: &Lab,
    origin: &str,
    quick: bool,
) -> anyhow::Result<Vec<Run>> {
    lab.until_idle(IDLE_WITHIN).await;
    let url = format!("{origin}/");
    let tabs = profile.open_tabs(&url, TABS, SETTLE).await?;
    // Before the probe: its new tab would hold one more stream.
    let server_streams = lab.open_streams().await.ok();
    let timeout = probe_timeout(quick);
    let probe = profile.probe(&tabs, timeout).await?;
    let report = &tabs.report;
    Ok(vec![values([
        ("open", json!(report.open), "streams"),
        ("pending", json!(report.pending), "tabs"),
        ("protocol", json!(report.protocol), "protocol"),
        ("connections", json!(report.connections), "connections"),
        ("server_streams", json!(server_streams), "streams"),
        ("settled_ms", json!(report.settled_ms), "ms"),
        ("probe_fetch", probe_value(&probe.fetch), "ms"),
        ("probe_nav", probe_value(&probe.nav), "ms"),
        ("probe_timeout", json!(timeout.as_millis() as u64), "ms"),
    ])])
}

/// Milliseconds, `blocked`, or `failed: …`.
fn probe_value(time: &ProbeTime) -> serde_json::Value {
    match time {
        ProbeTime::Took(ms) => json!(ms),
        ProbeTime::Blocked => json!("blocked"),
        ProbeTime::Failed(reason) => json!(format!("failed: {reason}")),
    }
}
