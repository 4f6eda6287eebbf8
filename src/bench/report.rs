//! What a bench run measured, summed over its streams, and how it is printed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::args::BenchArgs;
use super::measure::Window;
use super::scrape::ServerMetrics;
use super::tally::Tally;
use crate::client::Proto;

/// p50/p99/p999/max of one distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Self {
            samples: histogram.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: histogram.max() as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishReport {
    pub url: String,
    pub rate_per_sec: f64,
    pub sent: u64,
    pub failed: u64,
    /// From writing a publish request to its answer's status line (the server's 202 comes
    /// after the event is queued for every subscriber), over the answered ones.
    pub answer: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub url: String,
    /// The other nodes the streams were split over (`--also-url`).
    pub also_urls: Vec<String>,
    pub proto: String,
    pub streams: u64,
    pub connections: u64,
    pub established: u64,
    pub failed: u64,
    /// Why streams failed to establish, with counts.
    pub failures: BTreeMap<String, u64>,
    /// Established streams that the server or network ended before the run did.
    pub ended_early: u64,
    pub establish: Percentiles,
    pub first_event: Percentiles,
    pub events_received: u64,
    pub events_per_sec: f64,
    pub publish: Option<PublishReport>,
    pub latency: Percentiles,
    /// Published sequence numbers an established stream never received.
    pub lost: u64,
    pub duplicated: u64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_rss_per_stream_bytes: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub measured_secs: f64,
}

impl Report {
    /// Sum up a finished run.
    pub(super) fn build(
        args: &BenchArgs,
        proto: Proto,
        tally: &Tally,
        window: Window,
        server: ServerMetrics,
    ) -> Self {
        let established = tally.established.load(Ordering::Relaxed);
        let failures = tally.failures();
        let expected = window.publish.as_ref().map_or(0, |p| p.sent * established);
        let unique = tally.unique_seqs.load(Ordering::Relaxed);
        let (rss_before, rss_after) = (server.rss_before(), server.rss_with_streams());
        Report {
            url: args.url.clone(),
            also_urls: args.also_url.clone(),
            proto: format!("{proto:?}").to_lowercase(),
            streams: args.streams,
            connections: if proto == Proto::H1 {
                established
            } else {
                args.connections
            },
            established,
            failed: failures.values().sum(),
            failures,
            ended_early: tally.ended_early.load(Ordering::Relaxed),
            establish: Percentiles::from_micros(&tally.establish.merged()),
            first_event: Percentiles::from_micros(&tally.first_event.merged()),
            events_received: window.events,
            events_per_sec: window.events as f64 / window.measured.as_secs_f64().max(0.001),
            latency: Percentiles::from_micros(&tally.latency.merged()),
            lost: expected.saturating_sub(unique),
            duplicated: tally.duplicated.load(Ordering::Relaxed),
            server_rss_before_bytes: rss_before,
            server_rss_after_bytes: rss_after,
            server_rss_per_stream_bytes: match (rss_before, rss_after) {
                (Some(before), Some(after)) if established > 0 => {
                    Some((after as f64 - before as f64) / established as f64)
                }
                _ => None,
            },
            server_cpu_seconds: server.cpu_seconds(),
            publish: window.publish,
            measured_secs: window.measured.as_secs_f64(),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| out.push_str(&format!("{label:<22} {value}\n"));
        line("target", format!("{} ({})", self.url, self.proto));
        for url in &self.also_urls {
            line("  and (round-robin)", url.clone());
        }
        line(
            "streams",
            format!(
                "{} asked, {} established, {} failed, {} ended early; {} connections",
                self.streams, self.established, self.failed, self.ended_early, self.connections
            ),
        );
        for (reason, n) in &self.failures {
            line("  failure", format!("{n} × {reason}"));
        }
        line("establish", percentiles(&self.establish));
        line("first event", percentiles(&self.first_event));
        line(
            "events",
            format!(
                "{} received, {:.0}/s over {:.1} s",
                self.events_received, self.events_per_sec, self.measured_secs
            ),
        );
        if let Some(publish) = &self.publish {
            line(
                "published",
                format!(
                    "{} sent ({} failed) at {}/s to {}",
                    publish.sent, publish.failed, publish.rate_per_sec, publish.url
                ),
            );
            line("publish → answer", percentiles(&publish.answer));
            line("delivery latency", percentiles(&self.latency));
            line(
                "lost / duplicated",
                format!("{} / {}", self.lost, self.duplicated),
            );
        }
        if let (Some(before), Some(after)) =
            (self.server_rss_before_bytes, self.server_rss_after_bytes)
        {
            line(
                "server RSS",
                format!(
                    "{:.1} MiB before, {:.1} MiB with streams open: {} per stream",
                    before as f64 / 1048576.0,
                    after as f64 / 1048576.0,
                    self.server_rss_per_stream_bytes
                        .map_or("n/a".into(), |b| format!("{:.0} B", b))
                ),
            );
        }
        if let Some(cpu) = self.server_cpu_seconds {
            line("server CPU", format!("{cpu:.2} s during the run"));
        }
        out
    }
}

fn percentiles(p: &Percentiles) -> String {
    if p.samples == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms ({} samples)",
        p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms, p.samples
    )
}
