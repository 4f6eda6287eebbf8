//! How long a client waits before it reconnects: the `retry:` of every stream's first frame,
//! and of the last frame each stream gets when the server shuts down.
//!
//! Why: with one `retry:` for every stream, a restart brings every client back at the same
//! millisecond — 10 000 open streams, 10 000 reconnects at once. So each stream's `retry:` is
//! drawn uniformly from `[retry, retry × (1 + jitter)]`, and at shutdown each stream first
//! gets a frame whose `retry:` is drawn uniformly from `[retry, retry + drain spread]`, which
//! spreads the returns over the whole window (and never brings a client back sooner than its
//! `retry` said). A `retry:` the client asked for itself (`?retry=`) is sent as asked — the
//! lab uses it to show an exact reconnect delay — but the shutdown frame spreads it too.
//!
//! It decides numbers only, once per stream: [`RetryPolicy::for_stream`] is the one place a
//! stream's `retry:` values are chosen. It does not know when a server shuts down; the stream
//! driver sends [`StreamRetry::shutdown_frame`] when it does, and
//! [`StreamRetry::token_expired_frame`] when a stream's token stops being accepted.

use std::time::Duration;

use bytes::Bytes;

use super::MAX_RETRY_MS;
use super::frame::{Frame, names};

/// Largest `--retry-jitter`: up to twice the configured `retry:`. More would mostly mean a
/// typo (20 for 0.2), and a larger window is what `--drain-spread` is for.
pub const MAX_RETRY_JITTER: f64 = 1.0;

/// `text` as a jitter fraction from 0 to [`MAX_RETRY_JITTER`], or a one-line reason.
pub fn parse_jitter(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|fraction| check_jitter(fraction).ok())
        .ok_or_else(|| {
            format!(
                "must be a fraction from 0 to {MAX_RETRY_JITTER} (0.2 = up to 20 % longer, 0 = off), got {text:?}"
            )
        })
}

fn check_jitter(fraction: f64) -> Result<f64, String> {
    if fraction.is_finite() && (0.0..=MAX_RETRY_JITTER).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(format!(
            "retry jitter must be from 0 to {MAX_RETRY_JITTER}, got {fraction}"
        ))
    }
}

/// The server-wide rule, from `--retry`, `--retry-jitter` and `--drain-spread`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    retry_ms: u64,
    jitter: f64,
    drain_spread_ms: u64,
}

/// One stream's `retry:` values, drawn when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRetry {
    /// The `retry:` of the stream's first frame.
    pub first_ms: u64,
    /// The `retry:` of its last frame at shutdown; `None` when `--drain-spread` is 0.
    pub shutdown_ms: Option<u64>,
}

impl RetryPolicy {
    /// `retry_ms` is clamped to [`MAX_RETRY_MS`]; a `jitter` outside 0 to
    /// [`MAX_RETRY_JITTER`] is refused; a zero `drain_spread` sends no shutdown frame.
    pub fn new(retry_ms: u64, jitter: f64, drain_spread: Duration) -> Result<Self, String> {
        let drain_spread_ms = u64::try_from(drain_spread.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            retry_ms: retry_ms.min(MAX_RETRY_MS),
            jitter: check_jitter(jitter)?,
            drain_spread_ms: drain_spread_ms.min(MAX_RETRY_MS),
        })
    }

    /// The configured `retry:` before jitter.
    pub fn retry_ms(&self) -> u64 {
        self.retry_ms
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The width of the shutdown window; zero when there is no shutdown frame.
    pub fn drain_spread(&self) -> Duration {
        Duration::from_millis(self.drain_spread_ms)
    }

    /// A new stream's `retry:` values. `requested`: a `retry:` the client asked for itself,
    /// sent without jitter.
    pub fn for_stream(&self, requested: Option<u64>) -> StreamRetry {
        self.for_stream_with(requested, &mut fastrand::Rng::new())
    }

    /// The `retry:` of a refusal stream whose `Retry-After` is `retry_after_ms`: drawn from
    /// `[retry_after, retry_after × (1 + jitter)]`, so clients refused together (a full cap,
    /// a Redis blip) do not come back together.
    pub fn for_refusal(&self, retry_after_ms: u64) -> u64 {
        self.for_refusal_with(retry_after_ms, &mut fastrand::Rng::new())
    }

    /// [`Self::for_refusal`] with a given random source.
    pub fn for_refusal_with(&self, retry_after_ms: u64, rng: &mut fastrand::Rng) -> u64 {
        let longest = (retry_after_ms as f64 * (1.0 + self.jitter)).round() as u64;
        uniform(rng, retry_after_ms, longest)
    }

    /// [`Self::for_stream`] with a given random source (a seeded one in tests).
    pub fn for_stream_with(&self, requested: Option<u64>, rng: &mut fastrand::Rng) -> StreamRetry {
        let (base, first_ms) = match requested {
            Some(asked) => (asked.min(MAX_RETRY_MS), asked.min(MAX_RETRY_MS)),
            None => {
                let longest = (self.retry_ms as f64 * (1.0 + self.jitter)).round() as u64;
                (self.retry_ms, uniform(rng, self.retry_ms, longest))
            }
        };
        let shutdown_ms = (self.drain_spread_ms > 0)
            .then(|| uniform(rng, base, base.saturating_add(self.drain_spread_ms)));
        StreamRetry {
            first_ms,
            shutdown_ms,
        }
    }
}

/// Uniform over whole milliseconds in `[low, high]`, both clamped to [`MAX_RETRY_MS`].
fn uniform(rng: &mut fastrand::Rng, low: u64, high: u64) -> u64 {
    let high = high.min(MAX_RETRY_MS);
    rng.u64(low.min(high)..=high)
}

impl StreamRetry {
    /// The same `retry:` first and no shutdown frame: for streams outside any policy.
    pub fn exact(retry_ms: u64) -> Self {
        Self {
            first_ms: retry_ms,
            shutdown_ms: None,
        }
    }

    /// The last frame at shutdown: its `retry:`, and `event: shutdown` saying the same in
    /// JSON so a page can show when it will be back. `None` when the spread is off.
    pub fn shutdown_frame(&self) -> Option<Bytes> {
        self.shutdown_ms.map(|ms| {
            Frame::new()
                .retry(ms)
                .event(&names::SHUTDOWN)
                .data(&format!("{{\"retry\":{ms}}}"))
                .finish()
        })
    }

    /// The last frame when the token with `exp` stops being accepted: the stream's own first
    /// `retry:` again (it is a planned reconnect, not a storm to spread), and
    /// `event: token-expired` saying both. No `id:`: the browser's Last-Event-ID stays put.
    pub fn token_expired_frame(&self, exp: u64) -> Bytes {
        let ms = self.first_ms;
        Frame::new()
            .retry(ms)
            .event(&names::TOKEN_EXPIRED)
            .data(&format!("{{\"exp\":{exp},\"retry_ms\":{ms}}}"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retry_ms: u64, jitter: f64, spread_secs: u64) -> RetryPolicy {
        RetryPolicy::new(retry_ms, jitter, Duration::from_secs(spread_secs)).expect("valid")
    }

    fn draws(policy: RetryPolicy, requested: Option<u64>) -> Vec<StreamRetry> {
        let mut rng = fastrand::Rng::with_seed(13);
        (0..2000)
            .map(|_| policy.for_stream_with(requested, &mut rng))
            .collect()
    }

    #[test]
    fn jitter_stays_in_its_window_and_reaches_both_ends() {
        let firsts: Vec<u64> = draws(policy(5000, 0.2, 0), None)
            .iter()
            .map(|s| s.first_ms)
            .collect();
        assert!(firsts.iter().all(|ms| (5000..=6000).contains(ms)));
        // 2000 seeded draws over 1001 values: both tenths of the window are hit.
        assert!(*firsts.iter().min().expect("draws") < 5100);
        assert!(*firsts.iter().max().expect("draws") > 5900);
    }

    #[test]
    fn a_refusal_retry_spreads_over_the_jitter_window_of_its_retry_after() {
        let mut rng = fastrand::Rng::with_seed(7);
        let waits: Vec<u64> = (0..2000)
            .map(|_| policy(1000, 0.2, 0).for_refusal_with(2000, &mut rng))
            .collect();
        assert!(waits.iter().all(|ms| (2000..=2400).contains(ms)));
        assert!(*waits.iter().min().expect("draws") < 2040);
        assert!(*waits.iter().max().expect("draws") > 2360);
        assert_eq!(policy(1000, 0.0, 0).for_refusal(5000), 5000);
    }

    #[test]
    fn zero_jitter_and_a_requested_retry_are_sent_exactly() {
        assert!(
            draws(policy(5000, 0.0, 0), None)
                .iter()
                .all(|s| *s == StreamRetry::exact(5000))
        );
        assert!(
            draws(policy(5000, 0.5, 0), Some(1500))
                .iter()
                .all(|s| s.first_ms == 1500)
        );
    }

    #[test]
    fn the_shutdown_retry_spans_retry_to_retry_plus_spread() {
        let shutdowns: Vec<u64> = draws(policy(1000, 0.2, 10), Some(300))
            .iter()
            .map(|s| s.shutdown_ms.expect("spread is on"))
            .collect();
        assert!(shutdowns.iter().all(|ms| (300..=10_300).contains(ms)));
        assert!(*shutdowns.iter().min().expect("draws") < 1300);
        assert!(*shutdowns.iter().max().expect("draws") > 9300);
        assert!(
            draws(policy(1000, 0.2, 0), None)
                .iter()
                .all(|s| s.shutdown_ms.is_none())
        );
    }

    #[test]
    fn every_value_is_clamped_to_the_largest_retry() {
        let near_max = policy(MAX_RETRY_MS - 10, 1.0, 3600);
        for stream in draws(near_max, None) {
            assert!((MAX_RETRY_MS - 10..=MAX_RETRY_MS).contains(&stream.first_ms));
            let shutdown = stream.shutdown_ms.expect("spread is on");
            assert!((MAX_RETRY_MS - 10..=MAX_RETRY_MS).contains(&shutdown));
        }
        let asked_too_much = policy(0, 0.0, 0).for_stream(Some(u64::MAX));
        assert_eq!(asked_too_much.first_ms, MAX_RETRY_MS);
    }

    #[test]
    fn a_jitter_outside_zero_to_one_is_refused_with_its_value() {
        for bad in ["-0.1", "1.5", "NaN", "inf", "20%", ""] {
            let reason = parse_jitter(bad).expect_err(bad);
            assert!(reason.contains("from 0 to 1"), "{reason}");
            assert!(reason.contains(&format!("{bad:?}")), "{reason}");
        }
        assert_eq!(parse_jitter("0"), Ok(0.0));
        assert_eq!(parse_jitter(" 0.2 "), Ok(0.2));
        assert!(RetryPolicy::new(5000, f64::NAN, Duration::ZERO).is_err());
    }

    #[test]
    fn the_shutdown_frame_carries_retry_and_a_shutdown_event() {
        let frame = StreamRetry {
            first_ms: 5000,
            shutdown_ms: Some(7321),
        }
        .shutdown_frame()
        .expect("spread is on");
        assert_eq!(
            &frame[..],
            b"retry: 7321\nevent: shutdown\ndata: {\"retry\":7321}\n\n"
        );
        assert_eq!(StreamRetry::exact(5000).shutdown_frame(), None);
    }
}
