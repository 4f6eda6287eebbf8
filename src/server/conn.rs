//! Per-connection facts: which listener accepted it, its id, its peer, how many requests it
//! carried. The SSE lab is about connections, so every request knows the one it came on.
//!
//! [`ConnAcceptor`] runs once per accepted TCP connection (the HTTP/3 listener does the same
//! per QUIC connection, in `h3`) (before TLS): it asks
//! [`Admission`] whether the connection is under the caps, turns it away if not, and
//! otherwise wraps the router with a tiny service that stamps each request with a
//! [`ConnContext`].

use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum_server::ConnectionShutdown;
use axum_server::accept::Accept;
use axum_server::tls::TlsInfo;
use http::request::Parts;
use http::{Request, Version};
use tokio::net::TcpStream;
use tower::Service;

use super::ListenerKind;
use super::admission::{Admission, ConnLimits};
use super::refusal::RefusalConfig;

/// Connections accepted and open, per listener, and the caps they are held to; shared by
/// every acceptor of one server.
#[derive(Debug)]
pub struct ConnCounters {
    next_id: AtomicU64,
    open: [AtomicU64; ListenerKind::COUNT],
    /// Closed before a complete request arrived: a TLS handshake or request headers that
    /// never finished in time (slowloris), or a client that connected and left.
    closed_without_request: AtomicU64,
    admission: Admission,
}

impl ConnCounters {
    pub fn new(limits: ConnLimits, refusals: RefusalConfig) -> Self {
        Self {
            next_id: AtomicU64::new(0),
            open: Default::default(),
            closed_without_request: AtomicU64::new(0),
            admission: Admission::new(limits, refusals),
        }
    }

    /// The caps, and the connections they refused.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    pub fn closed_without_request(&self) -> u64 {
        self.closed_without_request.load(Ordering::Relaxed)
    }

    /// Connections open now on each listener, in [`ListenerKind::ALL`] order.
    pub fn open(&self) -> [u64; ListenerKind::COUNT] {
        self.open.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    pub fn accepted(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// Count in a connection the caps admitted, under a new id; it counts itself out when
    /// dropped (after its last request).
    pub fn opened(
        self: &Arc<Self>,
        listener: ListenerKind,
        peer: Option<SocketAddr>,
    ) -> Arc<ConnInfo> {
        self.open[listener.index()].fetch_add(1, Ordering::Relaxed);
        Arc::new(ConnInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            listener,
            peer,
            requests: AtomicU64::new(0),
            counters: self.clone(),
        })
    }
}

/// One accepted TCP connection; shared by every request (HTTP/2 stream) it carries.
/// Dropped when the connection and its last request are gone.
#[derive(Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub listener: ListenerKind,
    pub peer: Option<SocketAddr>,
    requests: AtomicU64,
    counters: Arc<ConnCounters>,
}

impl Drop for ConnInfo {
    fn drop(&mut self) {
        self.counters.open[self.listener.index()].fetch_sub(1, Ordering::Relaxed);
        self.counters
            .admission
            .release(self.peer.map(|peer| peer.ip()));
        if self.requests.load(Ordering::Relaxed) == 0 {
            self.counters
                .closed_without_request
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ConnInfo {
    /// Stamp a request with this connection: 1 for its first request, 2 for the next…
    pub fn context(self: &Arc<Self>) -> ConnContext {
        ConnContext {
            conn: self.clone(),
            request_number: self.requests.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

/// What a handler knows about the request's connection.
#[derive(Debug, Clone)]
pub struct ConnContext {
    pub conn: Arc<ConnInfo>,
    /// 1 for the first request on the connection, 2 for the next…
    pub request_number: u64,
}

/// Wraps another acceptor (plain or the rustls one) and numbers the connections it accepts.
#[derive(Debug, Clone)]
pub struct ConnAcceptor {
    listener: ListenerKind,
    counters: Arc<ConnCounters>,
}

impl ConnAcceptor {
    /// `counters` is shared by all listeners so connection ids are unique per server.
    pub fn new(listener: ListenerKind, counters: Arc<ConnCounters>) -> Self {
        Self { listener, counters }
    }
}

impl<S> Accept<TcpStream, S> for ConnAcceptor {
    type Stream = TcpStream;
    type Service = WithConn<S>;
    type Future = Ready<io::Result<(TcpStream, WithConn<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        let admission = &self.counters.admission;
        if let Err(refusal) = admission.admit(peer.map(|peer| peer.ip())) {
            tracing::debug!(listener = %self.listener, ?peer, reason = refusal.name(), "connection refused");
            admission.turn_away(stream, self.listener, refusal);
            return ready(Err(io::Error::other(refusal.name())));
        }
        // SSE frames are small and latency is the point: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let conn = self.counters.opened(self.listener, peer);
        ready(Ok((
            stream,
            WithConn {
                inner: service,
                conn,
            },
        )))
    }
}

/// The per-connection service: counts requests and inserts a [`ConnContext`].
#[derive(Debug, Clone)]
pub struct WithConn<S> {
    inner: S,
    conn: Arc<ConnInfo>,
}

impl<S, B> Service<Request<B>> for WithConn<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.conn.context());
        self.inner.call(request)
    }
}

/// Everything a handler reports about how a request arrived. Never fails: a request that did
/// not come through [`ConnAcceptor`] (a unit test calling the router directly) gets blanks.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub listener: Option<ListenerKind>,
    pub connection_id: u64,
    pub request_number: u64,
    pub peer: Option<SocketAddr>,
    pub version: Version,
    pub alpn: Option<String>,
    pub tls: bool,
    /// Closes this request's connection (every stream on it, for HTTP/2).
    pub connection: Option<ConnectionShutdown>,
}

impl RequestInfo {
    /// "HTTP/1.1", "HTTP/2"… as browsers and curl print it.
    pub fn protocol(&self) -> &'static str {
        protocol_name(self.version)
    }

    pub fn listener_name(&self) -> &'static str {
        self.listener.map_or("unknown", ListenerKind::name)
    }

    pub fn peer_text(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".into(), |p| p.to_string())
    }
}

pub fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let conn = parts.extensions.get::<ConnContext>();
        let tls = parts.extensions.get::<Arc<TlsInfo>>();
        // HTTP/3 is always TLS 1.3 with ALPN h3; its listener has no TlsInfo to say so.
        let h3 = parts.version == Version::HTTP_3;
        Ok(RequestInfo {
            listener: conn.map(|c| c.conn.listener),
            connection_id: conn.map_or(0, |c| c.conn.id),
            request_number: conn.map_or(0, |c| c.request_number),
            peer: conn.and_then(|c| c.conn.peer),
            version: parts.version,
            alpn: tls
                .and_then(|t| t.alpn_protocol.as_deref())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .or_else(|| h3.then(|| "h3".to_string())),
            tls: tls.is_some() || h3,
            connection: parts.extensions.get::<ConnectionShutdown>().cloned(),
        })
    }
}
