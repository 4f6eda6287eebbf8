//! The control client: what a normal client gets while the server is attacked. One request
//! at a time, it opens a fresh connection to `--url` (TCP, TLS, the protocol's handshake),
//! asks for the stream, times its first event and closes, then waits a moment and goes
//! again, for as long as it is told. A fresh connection each time, because accepting and
//! handshaking is what the connection attacks compete for.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::time::Instant;

use super::args::AttackPlan;
use crate::bench::percentiles::{Percentiles, histogram};
use crate::bench::request::{refused, refused_failure, send};
use crate::sse::parser::Parser;

/// The pause between two samples: about twenty a second, a browser reloading very often.
const CONTROL_PAUSE: Duration = Duration::from_millis(50);

/// What the control client saw over one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ControlReport {
    /// Connect to first event, per sample.
    pub first_event: Percentiles,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
}

/// Sample for `how_long`, one request at a time.
pub(super) async fn sample(plan: &AttackPlan, how_long: Duration) -> ControlReport {
    let mut times = histogram();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        let began = Instant::now();
        match tokio::time::timeout(plan.connect_timeout, first_event(plan)).await {
            Ok(Ok(())) => {
                let micros = began.elapsed().as_micros() as u64;
                times.saturating_record(micros.max(1));
            }
            Ok(Err(reason)) => *failures.entry(reason).or_default() += 1,
            Err(_) => *failures.entry("timed out".into()).or_default() += 1,
        }
        tokio::time::sleep(CONTROL_PAUSE).await;
    }
    ControlReport {
        first_event: Percentiles::from_micros(&times),
        failed: failures.values().sum(),
        failures,
    }
}

/// One sample: a new connection, the stream, its first event.
async fn first_event(plan: &AttackPlan) -> Result<(), String> {
    let conn = plan.target.connect(plan.connect_timeout).await?;
    let response = send(&conn, "GET", &plan.url, None, Bytes::new()).await?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    // Its one event says "come back later", not that the stream opened.
    if let Some(reason) = refused(response.headers()) {
        return Err(refused_failure(&reason));
    }
    let mut body = response.into_body();
    let mut parser = Parser::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !parser.feed(&data).is_empty()
                {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(format!("stream: {e}")),
            None => return Err("stream ended before an event".into()),
        }
    }
}
