//! Fan-out mode's publishers: stamped events POSTed at `--rate` for `--duration`, to each
//! topic in turn, by `--publishers` connections at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Uri;
use http_body_util::BodyExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use serde::Serialize;

use super::args::LoadArgs;
use super::stamp::stamp;
use crate::bench::args::on_loopback;
use crate::bench::percentiles::{Percentiles, histogram};
use crate::bench::request::send;
use crate::client::{Conn, Proto, Target};

/// What the publishers did, and how fast the server answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishReport {
    pub url: String,
    /// Topics the publishes went to, each in turn (`--topics-per-stream`).
    pub topics: usize,
    /// Connections publishing at once (`--publishers`), one publish in flight on each.
    pub publishers: u16,
    pub rate_per_sec: f64,
    pub sent: u64,
    pub failed: u64,
    /// Publishes answered with success per second of publishing (the drain left out).
    pub sent_per_sec: f64,
    /// From writing a publish request to its answer's status line (the server's 202 comes
    /// after the event is queued for every subscriber), over the answered ones.
    pub answer: Percentiles,
}

/// POST stamped events at the rate for the duration: `--publishers` keep-alive connections,
/// each at its share of the rate, to each of `urls` (`--publish-url` `url` for each topic, all
/// on one server) in turn, every publish numbered apart.
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
    // Every publisher's connection first, so none starts late for want of a handshake.
    let connecting = (0..args.publishers).map(|_| target.connect(timeout));
    let mut conns = Vec::new();
    for conn in futures_util::future::join_all(connecting).await {
        conns.push(conn.map_err(|e| anyhow::anyhow!("--publish-url {url}: {e}"))?);
    }
    let publishing = Arc::new(Publishing {
        uris,
        target,
        timeout,
        every: Duration::from_secs_f64(f64::from(args.publishers) / args.rate),
        end: Instant::now() + duration,
        seq: AtomicU64::new(0),
    });
    let began = Instant::now();
    let mut publishers = JoinSet::new();
    for conn in conns {
        publishers.spawn(publisher(conn, publishing.clone()));
    }
    let mut report = PublishReport {
        url: url.to_string(),
        topics: publishing.uris.len(),
        publishers: args.publishers,
        rate_per_sec: args.rate,
        ..Default::default()
    };
    let mut answer = histogram();
    while let Some(done) = publishers.join_next().await {
        let done = done.context("a publisher task failed")?;
        report.sent += done.sent;
        report.failed += done.failed;
        let _ = answer.add(&done.answer);
    }
    report.sent_per_sec = report.sent as f64 / began.elapsed().as_secs_f64().max(0.001);
    report.answer = Percentiles::from_micros(&answer);
    Ok(report)
}

/// What every publisher shares: where to publish, until when, and the next sequence number.
struct Publishing {
    uris: Vec<Uri>,
    target: Target,
    timeout: Duration,
    /// One publisher's interval: its share of `--rate`.
    every: Duration,
    end: Instant,
    seq: AtomicU64,
}

/// What one publisher did.
struct Published {
    sent: u64,
    failed: u64,
    answer: Histogram<u64>,
}

/// One publisher: a publish at a time on `conn` (a new connection after one fails), each
/// to the next topic by its sequence number, until the end.
async fn publisher(mut conn: Conn, shared: Arc<Publishing>) -> Published {
    let mut done = Published {
        sent: 0,
        failed: 0,
        answer: histogram(),
    };
    let mut every = tokio::time::interval(shared.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < shared.end {
        every.tick().await;
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let uri = &shared.uris[(seq - 1) as usize % shared.uris.len()];
        let asked = Instant::now();
        let body = Bytes::from(stamp(seq));
        let sent = tokio::time::timeout(
            shared.timeout,
            send(&conn, "POST", uri, Some("text/plain"), body),
        )
        .await;
        match sent {
            Ok(Ok(response)) if response.status().is_success() => {
                done.answer
                    .saturating_record(asked.elapsed().as_micros() as u64);
                let _ = response.into_body().collect().await;
                done.sent += 1;
            }
            Ok(Ok(response)) => {
                let _ = response.into_body().collect().await;
                done.failed += 1;
            }
            _ => {
                done.failed += 1;
                // The connection may be gone: open another for the next publish.
                match shared.target.connect(shared.timeout).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
    done
}
