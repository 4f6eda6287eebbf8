//! The distributions every bench mode reports: an HDR histogram of microseconds, read as
//! p50/p99/p999/max in milliseconds ([`Percentiles`]); and, for moments a mode counts in
//! milliseconds (when reconnects came back), the exact [`Spread`], the busiest window and a
//! text histogram of fixed-width [`Bucket`]s.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Histograms hold 1 µs to one hour; longer values are clamped to an hour.
const MAX_MICROS: u64 = 3_600_000_000;
/// Longest text histogram bar, in characters.
const BAR_WIDTH: u64 = 50;

/// An empty histogram of microseconds.
pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid fixed bounds")
}

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

/// Smallest, median, 99th percentile and largest of some milliseconds, exactly.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub samples: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Spread {
    pub(super) fn of(mut values: Vec<f64>) -> Self {
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

    /// `min …, p50 …, p99 …, max … (n samples)` in whole milliseconds.
    pub(super) fn text(&self) -> String {
        if self.samples == 0 {
            return "no samples".into();
        }
        format!(
            "min {:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples)",
            self.min_ms, self.p50_ms, self.p99_ms, self.max_ms, self.samples
        )
    }

    /// Like [`Self::text`], with the fractions a fast answer needs.
    pub(super) fn text_fine(&self) -> String {
        if self.samples == 0 {
            return "no samples".into();
        }
        format!(
            "min {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.min_ms, self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

/// The moments in `[from_ms, from_ms + width)` of a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub from_ms: u64,
    pub count: u64,
}

/// The most of `sorted` (milliseconds, ascending) inside any window `width_ms` wide.
pub(super) fn busiest(sorted: &[f64], width_ms: f64) -> u64 {
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

/// Counts of `sorted` (milliseconds, ascending) per `width_ms`, from the first bucket with a
/// value to the last (empty ones between them kept, so a gap shows).
pub(super) fn buckets(sorted: &[f64], width_ms: u64) -> Vec<Bucket> {
    let bucket_of = |ms: f64| ms.max(0.0) as u64 / width_ms;
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
        .map(|(i, count)| Bucket {
            from_ms: (first + i as u64) * width_ms,
            count,
        })
        .collect()
}

/// `buckets` as text, one line each: where it starts (in seconds, as many decimals as
/// `width_ms` needs), its count, and a bar scaled to the tallest; nothing when empty.
pub(super) fn bars(buckets: &[Bucket], width_ms: u64) -> String {
    let tallest = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let decimals = if width_ms.is_multiple_of(1000) {
        0
    } else if width_ms.is_multiple_of(100) {
        1
    } else {
        2
    };
    let mut out = String::new();
    for bucket in buckets.iter().filter(|_| tallest > 0) {
        let bar = (bucket.count * BAR_WIDTH).div_ceil(tallest) as usize;
        let line = format!(
            "  {:>7.decimals$} s {:>6} {}",
            bucket.from_ms as f64 / 1000.0,
            bucket.count,
            "#".repeat(bar)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
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
    fn buckets_keep_empty_ones_between_the_first_and_the_last() {
        let counts: Vec<(u64, u64)> = buckets(&[5010.0, 5020.0, 5600.0], 250)
            .iter()
            .map(|b| (b.from_ms, b.count))
            .collect();
        assert_eq!(counts, [(5000, 2), (5250, 0), (5500, 1)]);
        assert!(buckets(&[], 250).is_empty());
    }

    #[test]
    fn bars_scale_to_the_tallest_and_say_where_each_starts() {
        let text = bars(
            &[
                Bucket {
                    from_ms: 5000,
                    count: 4,
                },
                Bucket {
                    from_ms: 5100,
                    count: 1,
                },
            ],
            100,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("      5.0 s      4 #####"), "{text}");
        assert_eq!(lines[0].matches('#').count(), 50);
        assert_eq!(lines[1].matches('#').count(), 13);
        assert_eq!(bars(&[], 100), "");
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
