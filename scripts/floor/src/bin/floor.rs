//! The framework floor of issue 16: bare axum 0.8 + axum-server 0.9 (rustls, ring) SSE, no
//! product code. GET /sse/topics/{name} is an `Sse` stream fed by the topic's broadcast; each
//! stream encodes each event itself, as a plain axum SSE server does.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;
use bytes::Bytes;
use sselab_floor::{Hub, flags, quiet_tracing, router, tls_config, until_terminated};
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};

type FloorHub = Hub<(u64, Bytes)>;

/// Counts the stream open until it is dropped.
struct Open(Arc<FloorHub>);
impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn sse(
    State(hub): State<Arc<FloorHub>>,
    Path(name): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    hub.open.fetch_add(1, Ordering::Relaxed);
    let open = Open(hub.clone());
    let events = BroadcastStream::new(hub.subscribe(&name)).filter_map(move |published| {
        let _ = &open;
        let (id, body) = published.ok()?; // lagged: skipped
        let data = String::from_utf8_lossy(&body);
        Some(Ok(Event::default().id(id.to_string()).data(data)))
    });
    Sse::new(events)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    quiet_tracing()?;
    let flags = flags()?;
    let tls = tls_config(&flags.cert_dir)?;
    let hub = FloorHub::new(|id, body| (id, body));
    let app = router(hub.clone()).merge(
        axum::Router::new()
            .route("/sse/topics/{name}", get(sse))
            .with_state(hub),
    );
    let plain = tokio::net::TcpListener::bind(flags.http).await?;
    tokio::spawn(axum::serve(plain, app.clone()).into_future());
    // TCP_NODELAY as sselab and h2writer set it (axum-server's default acceptor leaves Nagle on).
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new());
    let tls = axum_server::bind(flags.https)
        .acceptor(acceptor)
        .serve(app.into_make_service());
    tokio::spawn(tls);
    until_terminated().await
}
