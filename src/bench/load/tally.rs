//! What the streams count as they run, shared by every stream task: latency histograms and
//! plain counters, read once at the end for the report.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::bench::percentiles::histogram;
use crate::sync::lock;

/// Histograms shared by all streams, sharded so 100k streams do not queue on one lock.
pub(super) struct Shards(Vec<Mutex<Histogram<u64>>>);

const SHARDS: usize = 16;

impl Shards {
    fn new() -> Self {
        Self((0..SHARDS).map(|_| Mutex::new(histogram())).collect())
    }

    pub fn record(&self, shard: usize, micros: u64) {
        lock(&self.0[shard % SHARDS]).saturating_record(micros.max(1));
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.0 {
            let _ = all.add(&*lock(shard));
        }
        all
    }
}

/// Everything a run counts, summed over its streams.
pub(super) struct Tally {
    pub establish: Shards,
    pub first_event: Shards,
    pub latency: Shards,
    pub events: AtomicU64,
    pub established: AtomicU64,
    pub ended_early: AtomicU64,
    pub duplicated: AtomicU64,
    /// Distinct sequence numbers received, summed over streams.
    pub unique_seqs: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    /// Refusal streams (a `200` that says "come back after `retry:`"), by reason.
    refusals: Mutex<BTreeMap<String, u64>>,
    /// Counting starts when measurement starts (after establishment).
    pub measuring: CancellationToken,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            establish: Shards::new(),
            first_event: Shards::new(),
            latency: Shards::new(),
            events: AtomicU64::new(0),
            established: AtomicU64::new(0),
            ended_early: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            unique_seqs: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
            measuring: CancellationToken::new(),
        }
    }

    /// A stream failed to establish, for `reason`.
    pub fn fail(&self, reason: String) {
        *lock(&self.failures).entry(reason).or_default() += 1;
    }

    /// Why streams failed, with counts.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        lock(&self.failures).clone()
    }

    /// A stream was answered with a refusal stream naming `reason`: not open, not broken.
    pub fn refuse(&self, reason: String) {
        *lock(&self.refusals).entry(reason).or_default() += 1;
    }

    /// Why streams were refused for now, with counts.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        lock(&self.refusals).clone()
    }

    /// Streams that answered, any way.
    pub fn settled(&self) -> u64 {
        self.established.load(Ordering::Relaxed)
            + lock(&self.failures).values().sum::<u64>()
            + lock(&self.refusals).values().sum::<u64>()
    }
}
