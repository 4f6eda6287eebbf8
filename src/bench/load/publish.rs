//! Fan-out mode's publisher: stamped events POSTed at `--rate` for `--duration`, to each
//! topic in turn.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use tokio::time::Instant;

use serde::Serialize;

use super::args::LoadArgs;
use super::stamp::stamp;
use crate::bench::args::on_loopback;
use crate::bench::percentiles::{Percentiles, histogram};
use crate::bench::request::send;
use crate::client::{Proto, Target};

/// What the publisher did, and how fast the server answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishReport {
    pub url: String,
    /// Topics the publishes went to, each in turn (`--topics-per-stream`).
    pub topics: usize,
    pub rate_per_sec: f64,
    pub sent: u64,
    pub failed: u64,
    /// From writing a publish request to its answer's status line (the server's 202 comes
    /// after the event is queued for every subscriber), over the answered ones.
    pub answer: Percentiles,
}

/// POST stamped events at the rate for the duration, on one keep-alive connection: to each
/// of `urls` (`--publish-url` `url` for each topic, all on one server) in turn, every publish
/// numbered apart.
pub(super) async fn publish(
    url: &str,
    urls: &[String],
    args: &LoadArgs,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<PublishReport> {
    let uris = urls
        .iter()
        .map(|url| {
            url.parse::<Uri>()
                .with_context(|| format!("--publish-url {url} is not a URL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Some(first) = uris.first() else {
        anyhow::bail!("--publish-url {url}: no topic to publish to");
    };
    if uris.iter().any(|uri| uri.authority() != first.authority()) {
        anyhow::bail!("--publish-url {url}: the topics' placeholder belongs in its path or query");
    }
    let shared = &args.shared;
    let target = Target::new(first, Proto::H1, shared.cacert.as_deref(), shared.insecure)?;
    if !args.streams.allow_remote {
        on_loopback(
            url,
            &target,
            "--publish-url stays on this machine unless --allow-remote",
        )?;
    }
    let mut report = PublishReport {
        url: url.to_string(),
        topics: uris.len(),
        rate_per_sec: args.rate,
        ..Default::default()
    };
    let mut conn = target
        .connect(timeout)
        .await
        .map_err(|e| anyhow::anyhow!("--publish-url {url}: {e}"))?;
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + duration;
    let mut seq = 0u64;
    let mut answer = histogram();
    while Instant::now() < end {
        every.tick().await;
        let uri = &uris[seq as usize % uris.len()];
        seq += 1;
        let asked = Instant::now();
        let sent = tokio::time::timeout(
            timeout,
            send(
                &conn,
                "POST",
                uri,
                Some("text/plain"),
                Bytes::from(stamp(seq)),
            ),
        )
        .await;
        match sent {
            Ok(Ok(response)) if response.status().is_success() => {
                answer.saturating_record(asked.elapsed().as_micros() as u64);
                let _ = response.into_body().collect().await;
                report.sent += 1;
            }
            Ok(Ok(response)) => {
                let _ = response.into_body().collect().await;
                report.failed += 1;
            }
            _ => {
                report.failed += 1;
                // The connection may be gone: open another for the next publish.
                match target.connect(timeout).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
    report.answer = Percentiles::from_micros(&answer);
    Ok(report)
}
