//! What `sselab bench reconnect` saw, summed over its streams, and how it is printed: the
//! `retry:` values the streams were told, and when their reconnects were answered, as
//! percentiles, the busiest windows and a histogram.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use super::args::ReconnectArgs;
use super::outcome::Outcome;
use crate::client::Proto;

/// Width of one histogram bar: fine enough to show a storm, coarse enough to read.
const BUCKET_MS: u64 = 250;
/// Longest histogram bar, in characters.
const BAR_WIDTH: u64 = 50;

/// Smallest, median, 99th percentile and largest of some milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub samples: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the samples at or below it.
        let rank =
            |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Self {
            samples: values.len() as u64,
            min_ms: values[0],
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: values[values.len() - 1],
        }
    }
}

/// Reconnects answered in `[from_ms, from_ms + BUCKET_MS)` after the first stream ended.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bucket {
    pub from_ms: u64,
    pub reconnects: u64,
}

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
            failures,
            busiest_100ms: busiest(&sorted, 100.0),
            busiest_1s: busiest(&sorted, 1000.0),
            histogram: histogram(&sorted),
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
        line("retry: told", spread(&self.retry));
        line(
            "reconnected",
            format!(
                "{} of {} ended ({} with Last-Event-ID); {} attempts found no server and \
                 waited another retry:",
                self.reconnected, self.ended, self.resumed, self.attempts_without_server
            ),
        );
        for (reason, n) in &self.failures {
            line("  failure", format!("{n} × {reason}"));
        }
        line("answered after", spread(&self.reconnect_after));
        line("each answer took", spread_fine(&self.answer_took));
        line(
            "busiest",
            format!(
                "{} reconnects within 100 ms, {} within 1 s",
                self.busiest_100ms, self.busiest_1s
            ),
        );
        let tallest = self
            .histogram
            .iter()
            .map(|b| b.reconnects)
            .max()
            .unwrap_or(0);
        if tallest > 0 {
            out.push_str(&format!(
                "reconnects answered per {BUCKET_MS} ms after the first stream ended:\n"
            ));
        }
        for bucket in &self.histogram {
            let bar = (bucket.reconnects * BAR_WIDTH).div_ceil(tallest.max(1)) as usize;
            out.push_str(&format!(
                "  {:>7.2} s {:>6} {}\n",
                bucket.from_ms as f64 / 1000.0,
                bucket.reconnects,
                "#".repeat(bar)
            ));
        }
        out
    }
}

fn spread(s: &Spread) -> String {
    if s.samples == 0 {
        return "no samples".into();
    }
    format!(
        "min {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples)",
        s.min_ms, s.p50_ms, s.p99_ms, s.max_ms, s.samples
    )
}

/// Like [`spread`], with the fractions a fast answer needs.
fn spread_fine(s: &Spread) -> String {
    if s.samples == 0 {
        return "no samples".into();
    }
    format!(
        "min {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        s.min_ms, s.p50_ms, s.p99_ms, s.max_ms
    )
}

/// The most of `sorted` inside any window `width_ms` wide.
fn busiest(sorted: &[f64], width_ms: f64) -> u64 {
    let mut most = 0;
    let mut first = 0;
    for (last, at) in sorted.iter().enumerate() {
        while *at - sorted[first] >= width_ms {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most as u64
}

/// Counts per [`BUCKET_MS`], from the first bucket with a reconnect to the last (empty ones
/// between them kept, so a gap shows).
fn histogram(sorted: &[f64]) -> Vec<Bucket> {
    let bucket_of = |ms: f64| ms as u64 / BUCKET_MS;
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    let (first, last) = (bucket_of(*first), bucket_of(*last));
    let mut counts = vec![0; (last - first + 1) as usize];
    for ms in sorted {
        counts[(bucket_of(*ms) - first) as usize] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, reconnects)| Bucket {
            from_ms: (first + i as u64) * BUCKET_MS,
            reconnects,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_counts_the_fullest_window() {
        assert_eq!(busiest(&[], 100.0), 0);
        assert_eq!(busiest(&[0.0, 50.0, 99.0, 100.0, 150.0], 100.0), 3);
        assert_eq!(busiest(&[0.0, 1.0, 2.0, 500.0], 100.0), 3);
    }

    #[test]
    fn histogram_keeps_empty_buckets_between_the_first_and_the_last() {
        let buckets = histogram(&[5010.0, 5020.0, 5600.0]);
        let counts: Vec<(u64, u64)> = buckets.iter().map(|b| (b.from_ms, b.reconnects)).collect();
        assert_eq!(counts, [(5000, 2), (5250, 0), (5500, 1)]);
    }

    #[test]
    fn spread_takes_nearest_ranks() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p99_ms, s.max_ms),
            (1.0, 50.0, 99.0, 100.0)
        );
        assert_eq!(Spread::of(Vec::new()).samples, 0);
    }
}
