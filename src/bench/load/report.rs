//! What a bench run measured, summed over its streams, and how it is printed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::args::LoadArgs;
use super::measure::Window;
use super::publish::PublishReport;
use super::tally::Tally;
use crate::bench::percentiles::Percentiles;
use crate::bench::scrape::{CPU, NotMeasured, RSS, Scrape};
use crate::client::Proto;

/// The figures the server's metrics give, as the report names them.
const SERVER_RSS: &str = "server RSS";
const SERVER_CPU: &str = "server CPU";

/// The readings of `--server-metrics` in a run.
pub(super) struct ServerReadings {
    pub before: Scrape,
    pub with_streams: Scrape,
    pub after_run: Scrape,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub url: String,
    /// The other nodes the streams were split over (`--also-url`).
    pub also_urls: Vec<String>,
    pub proto: String,
    pub streams: u64,
    /// Topics each stream followed (`--topics-per-stream`), the same for every stream.
    pub topics_per_stream: u16,
    pub connections: u64,
    pub established: u64,
    pub failed: u64,
    /// Why streams failed to establish, with counts.
    pub failures: BTreeMap<String, u64>,
    /// Streams answered with a refusal stream (`200` with one `refused` event and its
    /// `retry:`, header `x-sselab-refused`): the server is full for now, not broken.
    pub refused: u64,
    /// Those refusals by the reason they named.
    pub refusals: BTreeMap<String, u64>,
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
    /// Server figures `--server-metrics` was asked for and did not give: figure → why.
    #[serde(skip_serializing_if = "NotMeasured::is_empty")]
    pub server_not_measured: NotMeasured,
    pub measured_secs: f64,
}

impl Report {
    /// Sum up a finished run.
    pub(super) fn build(
        args: &LoadArgs,
        proto: Proto,
        tally: &Tally,
        window: Window,
        server: Option<ServerReadings>,
    ) -> Self {
        let established = tally.established.load(Ordering::Relaxed);
        let failures = tally.failures();
        let refusals = tally.refusals();
        let expected = window.publish.as_ref().map_or(0, |p| p.sent * established);
        let unique = tally.unique_seqs.load(Ordering::Relaxed);
        let mut not_measured = NotMeasured::default();
        let (rss_before, rss_after, cpu) = match &server {
            Some(server) => (
                not_measured.note(SERVER_RSS, server.before.sample(RSS)),
                not_measured.note(SERVER_RSS, server.with_streams.sample(RSS)),
                not_measured.note(SERVER_CPU, server.after_run.growth(&server.before, CPU)),
            ),
            None => (None, None, None),
        };
        let (rss_before, rss_after) = (rss_before.map(|b| b as u64), rss_after.map(|b| b as u64));
        Report {
            url: args.shared.url.clone(),
            also_urls: args.also_url.clone(),
            proto: format!("{proto:?}").to_lowercase(),
            streams: args.streams.streams,
            topics_per_stream: args.topics_per_stream,
            connections: if proto == Proto::H1 {
                established
            } else {
                args.streams.connections
            },
            established,
            failed: failures.values().sum(),
            failures,
            refused: refusals.values().sum(),
            refusals,
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
            server_cpu_seconds: cpu,
            server_not_measured: not_measured,
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
                "{} asked, {} established, {} failed, {} refused for now, {} ended early; \
                 {} connections",
                self.streams,
                self.established,
                self.failed,
                self.refused,
                self.ended_early,
                self.connections
            ),
        );
        if self.topics_per_stream > 1 {
            line(
                "topics",
                format!(
                    "{} on each stream, the same for all",
                    self.topics_per_stream
                ),
            );
        }
        for (reason, n) in &self.failures {
            line("  failure", format!("{n} × {reason}"));
        }
        for (reason, n) in &self.refusals {
            line(
                "  refused",
                format!("{n} × {reason} (200 refusal stream: an EventSource comes back)"),
            );
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
                    "{} sent ({} failed) at {}/s to {}{}{}",
                    publish.sent,
                    publish.failed,
                    publish.rate_per_sec,
                    publish.url,
                    match publish.topics {
                        1 => String::new(),
                        topics => format!(" ({topics} topics in turn)"),
                    },
                    match publish.publishers {
                        1 => String::new(),
                        publishers => format!(", {publishers} publishers"),
                    }
                ),
            );
            line(
                "  accepted",
                format!("{:.0}/s while publishing", publish.sent_per_sec),
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
                SERVER_RSS,
                format!(
                    "{:.1} MiB before, {:.1} MiB with streams open: {} per stream",
                    before as f64 / 1048576.0,
                    after as f64 / 1048576.0,
                    self.server_rss_per_stream_bytes
                        .map_or("n/a".into(), |b| format!("{:.0} B", b))
                ),
            );
        } else if let Some(why) = self.server_not_measured.get(SERVER_RSS) {
            line(SERVER_RSS, format!("not measured: {why}"));
        }
        if let Some(cpu) = self.server_cpu_seconds {
            line(SERVER_CPU, format!("{cpu:.2} s during the run"));
        } else if let Some(why) = self.server_not_measured.get(SERVER_CPU) {
            line(SERVER_CPU, format!("not measured: {why}"));
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
