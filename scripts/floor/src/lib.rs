//! What the two comparison servers of issue 16 share (bench only, see scripts/bench_floor.sh):
//! - `floor`: the framework floor, bare axum + axum-server SSE with no product code;
//! - `h2writer`: the architectural option, one task per HTTP/2 connection writing each
//!   published frame, encoded once, to all of that connection's streams.
//!
//! Here: the flags, the self-signed certificate, the topic hub and the plain-HTTP side that
//! `sselab bench` talks to (POST /api/topics/{name}/events, /healthz, /metrics). Deliberately
//! nothing else: no auth, limits, replay, keep-alive or drain frame.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::broadcast;

/// `--http ADDR --https ADDR --cert-dir DIR`.
pub struct Flags {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub cert_dir: PathBuf,
}

pub fn flags() -> anyhow::Result<Flags> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name);
        at.and_then(|i| args.get(i + 1))
            .with_context(|| format!("{name} VALUE is required"))
    };
    Ok(Flags {
        http: value("--http")?.parse().context("--http")?,
        https: value("--https")?.parse().context("--https")?,
        cert_dir: value("--cert-dir")?.into(),
    })
}

/// A fresh self-signed certificate for 127.0.0.1 and localhost, written to DIR/cert.pem for
/// the client's --cacert; ALPN h2 then http/1.1, as sselab's TLS listener.
pub fn tls_config(dir: &std::path::Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let key = rcgen::KeyPair::generate()?;
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let cert = rcgen::CertificateParams::new(names)?.self_signed(&key)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Topics by name, each a broadcast of `T` (what a subscriber needs of one publish), and the
/// number of open streams for /metrics.
pub struct Hub<T> {
    topics: Mutex<HashMap<String, broadcast::Sender<T>>>,
    next_id: AtomicU64,
    pub open: AtomicI64,
    /// Turns (event id, published body) into what is broadcast.
    encode: fn(u64, Bytes) -> T,
}

impl<T: Clone> Hub<T> {
    pub fn new(encode: fn(u64, Bytes) -> T) -> Arc<Self> {
        Arc::new(Self {
            topics: Mutex::default(),
            next_id: AtomicU64::new(1),
            open: AtomicI64::new(0),
            encode,
        })
    }

    fn sender(&self, name: &str) -> broadcast::Sender<T> {
        let mut topics = self.topics.lock().expect("hub lock");
        topics
            .entry(name.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }

    pub fn subscribe(&self, name: &str) -> broadcast::Receiver<T> {
        self.sender(name).subscribe()
    }

    pub fn publish(&self, name: &str, body: Bytes) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.sender(name).send((self.encode)(id, body));
    }
}

/// `id: N\ndata: BODY\n\n` (the body is one line: the bench's JSON stamp).
pub fn sse_frame(id: u64, body: Bytes) -> Bytes {
    Bytes::from(format!(
        "id: {id}\ndata: {}\n\n",
        String::from_utf8_lossy(&body)
    ))
}

/// Publish, /healthz and /metrics (RSS, CPU seconds, open streams), merged into `sse`.
pub fn router<T: Clone + Send + Sync + 'static>(hub: Arc<Hub<T>>) -> Router {
    async fn publish<T: Clone>(
        State(hub): State<Arc<Hub<T>>>,
        Path(name): Path<String>,
        body: Bytes,
    ) -> StatusCode {
        hub.publish(&name, body);
        StatusCode::ACCEPTED
    }
    Router::new()
        .route("/api/topics/{name}/events", post(publish::<T>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::<T>))
        .with_state(hub)
}

/// What `sselab bench`'s `--server-metrics` and scripts/bench_profile.sh read (Linux; 4 KiB pages
/// and 100 clock ticks a second assumed).
async fn metrics<T>(State(hub): State<Arc<Hub<T>>>) -> String {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let field = |i: usize| {
        after_name
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse::<u64>().ok())
    };
    let ticks = field(11).unwrap_or(0) + field(12).unwrap_or(0); // utime, stime
    format!(
        "process_resident_memory_bytes {}\nprocess_cpu_seconds_total {}\nsselab_streams_open{{server=\"floor\"}} {}\n",
        pages * 4096,
        ticks as f64 / 100.0,
        hub.open.load(Ordering::Relaxed)
    )
}

/// A global subscriber that wants nothing, as any server that sets one up: without it, h2's
/// and hyper's trace spans fall back to the `log` crate on every enter and exit (~1.7k
/// instructions per delivery measured), which sselab, having a subscriber, never pays.
pub fn quiet_tracing() -> anyhow::Result<()> {
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())?;
    Ok(())
}

/// Until SIGTERM; then exit at once (valgrind writes its counts on exit).
pub async fn until_terminated() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate())?.recv().await;
    std::process::exit(0)
}
