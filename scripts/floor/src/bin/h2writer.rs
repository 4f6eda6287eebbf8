//! Issue 16's architectural option, as a prototype: SSE over HTTP/2 with the `h2` crate
//! directly and ONE task per connection. The task accepts the connection's requests, keeps the
//! SSE streams it answered, grouped by topic, and writes each published frame (encoded once by
//! the publisher, a shared `Bytes`) to every one of them. No task, queue or body per stream.
//!
//! Flow control: none of our own. Frames are ~60 bytes and the client's windows are large;
//! `send_data` beyond a stream's window is queued by h2 (unbounded), so a stream whose reader
//! stalls would grow until it is reset. A real server would check `SendStream::capacity`.
//! Only HTTP/2 on the TLS port (ALPN h2); publish and /metrics on the plain port (axum).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use h2::server::SendResponse;
use http::{Request, Response, StatusCode};
use sselab_floor::{Hub, flags, quiet_tracing, router, sse_frame, tls_config, until_terminated};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::{StreamExt, StreamMap, wrappers::BroadcastStream};

type FrameHub = Hub<Bytes>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    quiet_tracing()?;
    let flags = flags()?;
    let acceptor = TlsAcceptor::from(tls_config(&flags.cert_dir)?);
    let hub = FrameHub::new(sse_frame);
    let plain = tokio::net::TcpListener::bind(flags.http).await?;
    tokio::spawn(axum::serve(plain, router(hub.clone())).into_future());
    let listener = tokio::net::TcpListener::bind(flags.https).await?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(connection(tcp, acceptor.clone(), hub.clone()));
        }
    });
    until_terminated().await
}

/// The one task of one connection: TLS, the HTTP/2 handshake, then requests and frames as
/// they come, until the connection ends.
async fn connection(tcp: TcpStream, acceptor: TlsAcceptor, hub: Arc<FrameHub>) {
    let _ = tcp.set_nodelay(true);
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(mut conn) = h2::server::handshake(tls).await else {
        return;
    };
    let mut topics: StreamMap<String, BroadcastStream<Bytes>> = StreamMap::new();
    let mut streams: HashMap<String, Vec<h2::SendStream<Bytes>>> = HashMap::new();
    loop {
        tokio::select! {
            request = conn.accept() => match request {
                Some(Ok((request, respond))) => {
                    let Some((name, stream)) = answer(&request, respond) else { continue };
                    if !topics.contains_key(&name) {
                        topics.insert(name.clone(), BroadcastStream::new(hub.subscribe(&name)));
                    }
                    streams.entry(name).or_default().push(stream);
                    hub.open.fetch_add(1, Ordering::Relaxed);
                }
                _ => break,
            },
            Some((name, Ok(frame))) = topics.next(), if !topics.is_empty() => {
                let Some(list) = streams.get_mut(&name) else { continue };
                let before = list.len();
                // A stream the client reset fails here and is dropped.
                list.retain_mut(|stream| stream.send_data(frame.clone(), false).is_ok());
                hub.open.fetch_sub((before - list.len()) as i64, Ordering::Relaxed);
            }
        }
    }
    let left: usize = streams.values().map(Vec::len).sum();
    hub.open.fetch_sub(left as i64, Ordering::Relaxed);
}

/// GET /sse/topics/{name}: a 200 text/event-stream head and the stream to write to; anything
/// else: 404 and `None`.
fn answer<B>(
    request: &Request<B>,
    mut respond: SendResponse<Bytes>,
) -> Option<(String, h2::SendStream<Bytes>)> {
    let name = request.uri().path().strip_prefix("/sse/topics/");
    let name = name.filter(|n| !n.is_empty() && !n.contains('/') && request.method() == "GET");
    let Some(name) = name else {
        let head = Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(())
            .ok()?;
        let _ = respond.send_response(head, true);
        return None;
    };
    let head = Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(())
        .ok()?;
    let stream = respond.send_response(head, false).ok()?;
    Some((name.to_string(), stream))
}
