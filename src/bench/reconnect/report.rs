//! What `sselab bench reconnect` saw, summed over its streams, and how it is printed: the
//! `retry:` values the streams were told, and when their reconnects were answered, as
//! percentiles, the busiest windows and a histogram.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use super::args::ReconnectArgs;
use super::outcome::Outcome;
use crate::bench::percentiles::{Bucket, Spread, bars, buckets, busiest};
use crate::client::Proto;

/// Width of one histogram bar: fine enough to show a storm, coarse enough to read.
const BUCKET_MS: u64 = 250;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconnectReport {
    pub url: String,
    pub proto: String,
    pub streams: u64,
    pub established: u64,
    /// Established streams the server ended during the run (its restart).
    pub ended: u64,
    /// From the first stream's end to the last one's.
    pub ends_within_ms: f64,
    /// The `retry:` each ended stream was told last.
    pub retry: Spread,
    pub reconnected: u64,
    /// Reconnects that sent a `Last-Event-ID`.
    pub resumed: u64,
    /// Reconnect attempts that found no server and waited another `retry:`.
    pub attempts_without_server: u64,
    /// Reconnect attempts answered with a refusal stream (the server full for now), that
    /// waited the `retry:` it gave.
    pub attempts_refused: u64,
    /// Why streams did not open, or gave up reconnecting, with counts.
    pub failures: BTreeMap<String, u64>,
    /// When the reconnects were answered, counted from the first stream's end.
    pub reconnect_after: Spread,
    /// How long each answer took from its attempt (connect included): a storm queues here.
    pub answer_took: Spread,
    /// The most reconnects answered within any 100 ms, and within any second.
    pub busiest_100ms: u64,
    pub busiest_1s: u64,
    pub histogram: Vec<Bucket>,
}

impl ReconnectReport {
    pub(super) fn build(args: &ReconnectArgs, proto: Proto, outcomes: &[Outcome]) -> Self {
        let first_end = outcomes.iter().filter_map(|o| o.ended_at).min();
        let since_first_end = |at: Instant| {
            first_end.map_or(0.0, |first| {
                at.saturating_duration_since(first).as_secs_f64() * 1000.0
            })
        };
        let ends: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| o.ended_at.map(since_first_end))
            .collect();
        let arrivals: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| o.reconnected_at.map(since_first_end))
            .collect();
        let mut failures = BTreeMap::new();
        for failure in outcomes.iter().filter_map(|o| o.failure.clone()) {
            *failures.entry(failure).or_default() += 1;
        }
        let mut sorted = arrivals.clone();
        sorted.sort_by(f64::total_cmp);
        Self {
            url: args.shared.url.clone(),
            proto: format!("{proto:?}").to_lowercase(),
            streams: args.streams.streams,
            established: outcomes.iter().filter(|o| o.established).count() as u64,
            ended: ends.len() as u64,
            ends_within_ms: ends.iter().copied().fold(0.0, f64::max),
            retry: Spread::of(
                outcomes
                    .iter()
                    .filter_map(|o| o.retry_ms.map(|ms| ms as f64))
                    .collect(),
            ),
            reconnected: arrivals.len() as u64,
            resumed: outcomes.iter().filter(|o| o.resumed).count() as u64,
            attempts_without_server: outcomes.iter().map(|o| o.without_server).sum(),
            attempts_refused: outcomes.iter().map(|o| o.refused).sum(),
            failures,
            busiest_100ms: busiest(&sorted, 100.0),
            busiest_1s: busiest(&sorted, 1000.0),
            histogram: buckets(&sorted, BUCKET_MS),
            answer_took: Spread::of(
                outcomes
                    .iter()
                    .filter_map(|o| o.answer_took.map(|took| took.as_secs_f64() * 1000.0))
                    .collect(),
            ),
            reconnect_after: Spread::of(arrivals),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| out.push_str(&format!("{label:<22} {value}\n"));
        line("target", format!("{} ({})", self.url, self.proto));
        line(
            "streams",
            format!(
                "{} asked, {} established, {} ended by the server within {:.0} ms",
                self.streams, self.established, self.ended, self.ends_within_ms
            ),
        );
        line("retry: told", self.retry.text());
        line(
            "reconnected",
            format!(
                "{} of {} ended ({} with Last-Event-ID); {} attempts found no server and \
                 {} were refused for now (a refusal stream), each waited another retry:",
                self.reconnected,
                self.ended,
                self.resumed,
                self.attempts_without_server,
                self.attempts_refused
            ),
        );
        for (reason, n) in &self.failures {
            line("  failure", format!("{n} × {reason}"));
        }
        line("answered after", self.reconnect_after.text());
        line("each answer took", self.answer_took.text_fine());
        line(
            "busiest",
            format!(
                "{} reconnects within 100 ms, {} within 1 s",
                self.busiest_100ms, self.busiest_1s
            ),
        );
        if !self.histogram.is_empty() {
            out.push_str(&format!(
                "reconnects answered per {BUCKET_MS} ms after the first stream ended:\n"
            ));
        }
        out.push_str(&bars(&self.histogram, BUCKET_MS));
        out
    }
}
