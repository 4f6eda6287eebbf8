//! What `sselab bench storm` saw, summed over its clients, and how it is printed: how many
//! attempts were refused, the `retry:` each refusal told, and when each refused client came
//! back — counted from its own refusal (the spread the server's jitter gives) and on the
//! run's timeline from the first refusal (the waves the server meets).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::args::StormArgs;
use super::log::{Answer, Try};
use crate::bench::percentiles::{Bucket, Spread, bars, buckets, busiest};
use crate::client::Proto;

/// Returns per this many ms after their refusal: ten buckets across sselab's default
/// refusal window (Retry-After 5 s, --retry-jitter 0.2: 5–6 s).
const AFTER_REFUSAL_BUCKET_MS: u64 = 100;
/// Returns per this many ms on the run's timeline: a 15–30 s run's waves on one screen.
const TIMELINE_BUCKET_MS: u64 = 500;
/// A refusal not followed by an attempt is overdue once its `retry:` ended this long before
/// the run stopped (a busy machine may wake a client that late); before that, it was still
/// waiting.
const OVERDUE_AFTER: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default, Serialize)]
pub struct StormReport {
    pub url: String,
    pub proto: String,
    pub clients: u64,
    pub measured_secs: f64,
    /// Requests the clients sent, in all.
    pub attempts: u64,
    /// Attempts that sent a `Last-Event-ID`.
    pub resumed: u64,
    /// Attempts answered with a stream, and those of them the server ended in the run.
    pub streams_opened: u64,
    pub streams_ended: u64,
    /// Attempts answered with a refusal stream (`200`, one `refused` event, `retry:`).
    pub refused: u64,
    /// Those refusals by the reason they named.
    pub refusals: BTreeMap<String, u64>,
    /// Refusal streams that carried an `id:` (they must not).
    pub refusals_with_id: u64,
    /// Attempts no server answered (each waited `retry:` and tried again), and why.
    pub attempts_without_server: u64,
    pub without_server: BTreeMap<String, u64>,
    /// Attempts still unanswered when the run stopped.
    pub unanswered_at_end: u64,
    /// Answers a browser gives up on (not an event stream), by what they were.
    pub failures: BTreeMap<String, u64>,
    /// Clients refused at least once, and those of them that came back after their first
    /// refusal.
    pub refused_clients: u64,
    pub clients_back: u64,
    /// Refusals followed by another attempt from their client.
    pub returned: u64,
    /// Refusals whose `retry:` had not (or only just) run out when the run stopped.
    pub waiting_at_end: u64,
    /// Refusals whose `retry:` ran out well before the stop, not followed by an attempt.
    pub overdue: u64,
    /// Returns sooner than the `retry:` their refusal told.
    pub returned_early: u64,
    /// The `retry:` each refusal told.
    pub retry_told: Spread,
    /// From each refusal's end to its client's next attempt.
    pub returned_after: Spread,
    /// The same, per 100 ms.
    pub after_refusal: Vec<Bucket>,
    /// The most returns within any 100 ms, and within any second, of the run.
    pub busiest_100ms: u64,
    pub busiest_1s: u64,
    /// Returns per 500 ms since the first refusal.
    pub since_first_refusal: Vec<Bucket>,
}

impl StormReport {
    pub(super) fn build(
        args: &StormArgs,
        proto: Proto,
        logs: &[Vec<Try>],
        started: Instant,
        stopped: Instant,
    ) -> Self {
        let ms =
            |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        let first_refusal = logs
            .iter()
            .flatten()
            .filter_map(|t| match t.answer {
                Answer::Refused { ended, .. } => Some(ended),
                _ => None,
            })
            .min();
        let mut report = Self {
            url: args.shared.url.clone(),
            proto: format!("{proto:?}").to_lowercase(),
            clients: args.streams.streams,
            measured_secs: ms(started, stopped) / 1e3,
            ..Self::default()
        };
        let (mut told, mut after, mut timeline) = (Vec::new(), Vec::new(), Vec::new());
        for tries in logs {
            let mut first_refusal_of_client = true;
            for (at, attempt) in tries.iter().enumerate() {
                report.attempts += 1;
                report.resumed += u64::from(attempt.resumed);
                let (reason, ended, told_ms, with_id) = match &attempt.answer {
                    Answer::Pending => {
                        report.unanswered_at_end += 1;
                        continue;
                    }
                    Answer::Stream { ended } => {
                        report.streams_opened += 1;
                        report.streams_ended += u64::from(ended.is_some());
                        continue;
                    }
                    Answer::NoServer(reason) => {
                        report.attempts_without_server += 1;
                        *report.without_server.entry(reason.clone()).or_default() += 1;
                        continue;
                    }
                    Answer::Final(reason) => {
                        *report.failures.entry(reason.clone()).or_default() += 1;
                        continue;
                    }
                    Answer::Refused {
                        reason,
                        ended,
                        told_ms,
                        with_id,
                    } => (reason, *ended, *told_ms, *with_id),
                };
                report.refused += 1;
                *report.refusals.entry(reason.clone()).or_default() += 1;
                report.refusals_with_id += u64::from(with_id);
                told.extend(told_ms.map(|t| t as f64));
                if std::mem::take(&mut first_refusal_of_client) {
                    report.refused_clients += 1;
                }
                match tries.get(at + 1) {
                    Some(next) => {
                        let waited = ms(ended, next.sent);
                        report.returned += 1;
                        report.clients_back += u64::from(at == first_index(tries));
                        report.returned_early +=
                            u64::from(told_ms.is_some_and(|t| waited < t as f64));
                        after.push(waited);
                        timeline.push(first_refusal.map_or(0.0, |first| ms(first, next.sent)));
                    }
                    None => {
                        let due = ended + Duration::from_millis(told_ms.unwrap_or(0));
                        if due + OVERDUE_AFTER <= stopped {
                            report.overdue += 1;
                        } else {
                            report.waiting_at_end += 1;
                        }
                    }
                }
            }
        }
        timeline.sort_by(f64::total_cmp);
        after.sort_by(f64::total_cmp);
        report.busiest_100ms = busiest(&timeline, 100.0);
        report.busiest_1s = busiest(&timeline, 1000.0);
        report.since_first_refusal = buckets(&timeline, TIMELINE_BUCKET_MS);
        report.after_refusal = buckets(&after, AFTER_REFUSAL_BUCKET_MS);
        report.retry_told = Spread::of(told);
        report.returned_after = Spread::of(after);
        report
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| out.push_str(&format!("{label:<22} {value}\n"));
        line("target", format!("{} ({})", self.url, self.proto));
        line(
            "clients",
            format!(
                "{}, each an EventSource for {:.1} s",
                self.clients, self.measured_secs
            ),
        );
        line(
            "attempts",
            format!(
                "{}: {} streams ({} ended by the server), {} refusal streams, {} found no \
                 server, {} unanswered at the end; {} with Last-Event-ID",
                self.attempts,
                self.streams_opened,
                self.streams_ended,
                self.refused,
                self.attempts_without_server,
                self.unanswered_at_end,
                self.resumed
            ),
        );
        for (reason, n) in &self.refusals {
            line("  refused", format!("{n} × {reason}"));
        }
        for (reason, n) in &self.without_server {
            line("  no server", format!("{n} × {reason}"));
        }
        for (reason, n) in &self.failures {
            line("  gave up", format!("{n} × {reason}"));
        }
        line(
            "refused clients",
            format!(
                "{} refused at least once, {} came back after their first refusal",
                self.refused_clients, self.clients_back
            ),
        );
        line(
            "returns",
            format!(
                "{} of {} refusals came back ({} still waiting at the end, {} overdue); \
                 {} sooner than their retry:; {} refusals carried an id:",
                self.returned,
                self.refused,
                self.waiting_at_end,
                self.overdue,
                self.returned_early,
                self.refusals_with_id
            ),
        );
        line("retry: told", self.retry_told.text());
        line("came back after", self.returned_after.text());
        line(
            "busiest",
            format!(
                "{} returns within 100 ms, {} within 1 s",
                self.busiest_100ms, self.busiest_1s
            ),
        );
        if !self.after_refusal.is_empty() {
            out.push_str(&format!(
                "returns per {AFTER_REFUSAL_BUCKET_MS} ms after their refusal:\n"
            ));
            out.push_str(&bars(&self.after_refusal, AFTER_REFUSAL_BUCKET_MS));
            out.push_str(&format!(
                "returns per {TIMELINE_BUCKET_MS} ms since the first refusal:\n"
            ));
            out.push_str(&bars(&self.since_first_refusal, TIMELINE_BUCKET_MS));
        }
        out
    }
}

/// Where a client's first refusal is in its attempts.
fn first_index(tries: &[Try]) -> usize {
    tries
        .iter()
        .position(|t| matches!(t.answer, Answer::Refused { .. }))
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        storm: StormArgs,
    }

    fn refused(ended: Instant, told_ms: u64) -> Answer {
        Answer::Refused {
            reason: "max_streams".into(),
            ended,
            told_ms: Some(told_ms),
            with_id: false,
        }
    }

    fn sent(sent: Instant, answer: Answer) -> Try {
        Try {
            sent,
            resumed: false,
            answer,
        }
    }

    #[test]
    fn each_refusal_is_matched_with_its_clients_next_attempt() {
        let args = Flags::parse_from(["storm", "--url", "http://127.0.0.1:1/", "--streams", "5"]);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let logs = vec![
            // Back after 5050 ms of 5000, refused again, back after 5540 of 5500.
            vec![
                sent(at(0), refused(at(0), 5000)),
                sent(at(5050), refused(at(5060), 5500)),
                sent(at(10_600), Answer::Stream { ended: None }),
            ],
            // A stream that ended, then a refusal still waiting its 5200 ms at the stop.
            vec![
                sent(
                    at(0),
                    Answer::Stream {
                        ended: Some(at(9000)),
                    },
                ),
                sent(at(10_000), refused(at(10_010), 5200)),
            ],
            // Told 1000 ms, never back by the stop at 10.7 s: overdue.
            vec![sent(at(0), refused(at(0), 1000))],
            // Back 2000 ms after a refusal that told 3000: early.
            vec![
                sent(at(0), refused(at(10), 3000)),
                sent(at(2010), Answer::Pending),
            ],
            vec![sent(
                at(0),
                Answer::NoServer("connect: connection refused".into()),
            )],
        ];
        let report = StormReport::build(&args.storm, Proto::H1, &logs, t0, at(10_700));
        assert_eq!(report.attempts, 9);
        assert_eq!((report.streams_opened, report.streams_ended), (2, 1));
        assert_eq!(report.refused, 5);
        assert_eq!(report.refusals.get("max_streams"), Some(&5));
        assert_eq!((report.refused_clients, report.clients_back), (4, 2));
        assert_eq!(
            (report.returned, report.waiting_at_end, report.overdue),
            (3, 1, 1)
        );
        assert_eq!(report.returned_early, 1);
        assert_eq!(
            (report.unanswered_at_end, report.attempts_without_server),
            (1, 1)
        );
        let after = report.returned_after;
        assert_eq!((after.min_ms, after.max_ms), (2000.0, 5540.0));
        let counts: Vec<(u64, u64)> = report
            .after_refusal
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| (b.from_ms, b.count))
            .collect();
        assert_eq!(counts, [(2000, 1), (5000, 1), (5500, 1)]);
        // On the timeline, from the first refusal (at 0): 2010, 5050, 10 600, in 500 ms
        // buckets from 2.0 s to 10.5 s.
        let timeline = &report.since_first_refusal;
        assert_eq!(timeline.len(), 18);
        assert_eq!((timeline[0].from_ms, timeline[17].from_ms), (2000, 10_500));
        assert_eq!(report.busiest_1s, 1);
        assert!(report.text().contains("3 of 5 refusals came back"));
    }
}
