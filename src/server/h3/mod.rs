//! The HTTP/3 listener: QUIC on a UDP socket (quinn), HTTP/3 framing (h3, through h3-quinn),
//! and the same axum router as the TCP listeners behind it — no handler knows which transport
//! carried its request, beyond `Version::HTTP_3`.
//!
//! A QUIC connection is admitted against the same connection caps as a TCP one, gets a
//! [`ConnInfo`] like them, and counts its requests the same way. Its stream limit is
//! `initial_max_streams_bidi` ([`ProtocolLimits::h3_max_streams`]): past it, QUIC makes the
//! client wait for the server to grant more streams, rather than refusing a request.
//!
//! Shutdown: once the caller's streams have ended, every connection is sent GOAWAY, answers
//! what it already accepted, and closes; whatever is still open at the grace deadline is
//! cut with the endpoint.

mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ListenerKind;
use super::certs::CertMaterial;
use super::conn::{ConnCounters, ConnInfo};
use super::limits::ProtocolLimits;
use super::tls;

/// How often a connection looks at QUIC's count of STOP_SENDING frames received (see
/// `request`): how soon a stream a client cancelled is noticed, at most.
const STOP_SENDING_POLL: Duration = Duration::from_millis(250);

/// After GOAWAY and the last answer, how long a connection waits for its client to close it
/// before closing it itself.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// QUIC PINGs at this interval keep a connection whose streams are silent (keep-alive
/// comments off, no events) from reaching its idle timeout.
const QUIC_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A bound UDP socket, not yet serving.
#[derive(Debug)]
pub struct H3Socket {
    socket: std::net::UdpSocket,
    addr: SocketAddr,
}

impl H3Socket {
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let socket = std::net::UdpSocket::bind(addr)?;
        let addr = socket.local_addr()?;
        Ok(Self { socket, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Everything one HTTP/3 listener serves with.
pub struct H3Listener {
    pub socket: H3Socket,
    pub certificate: CertMaterial,
    pub app: Router,
    pub counters: Arc<ConnCounters>,
    pub protocol: ProtocolLimits,
    /// Cancelled when the listener should send GOAWAY and stop accepting.
    pub stop: CancellationToken,
    /// How long connections may take to finish after `stop`.
    pub grace: Duration,
}

impl H3Listener {
    /// Accept connections until `stop`, then let them finish within the grace period.
    pub async fn serve(self) -> anyhow::Result<()> {
        let config = quinn_config(&self.certificate, &self.protocol)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            self.socket.socket,
            Arc::new(quinn::TokioRuntime),
        )
        .with_context(|| format!("cannot serve HTTP/3 on {} (--h3)", self.socket.addr))?;
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                incoming = endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    let peer = incoming.remote_address();
                    let admission = self.counters.admission();
                    if let Err(refusal) = admission.admit(Some(peer.ip())) {
                        tracing::debug!(listener = "h3", %peer, reason = refusal.name(), "connection refused");
                        incoming.refuse();
                        admission.refused_quic(refusal);
                        continue;
                    }
                    let conn = self.counters.opened(ListenerKind::H3, Some(peer));
                    connections.spawn(connection(
                        incoming,
                        conn,
                        self.app.clone(),
                        self.protocol,
                        self.stop.clone(),
                    ));
                }
                Some(_) = connections.join_next() => {}
                _ = self.stop.cancelled() => break,
            }
        }
        // New connections are refused from here on; accepted ones finish or are cut.
        endpoint.set_server_config(None);
        let finished = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace, finished).await.is_err() {
            tracing::debug!(
                left = connections.len(),
                "HTTP/3 connections cut at the grace deadline"
            );
        }
        endpoint.close(no_error(), b"shutdown");
        // Lets the CONNECTION_CLOSE frames leave; bounded because a peer need not answer.
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        Ok(())
    }
}

/// The QUIC side: TLS 1.3 with ALPN h3 on the shared certificate, the stream limit, and the
/// keep-alive.
fn quinn_config(
    certificate: &CertMaterial,
    limits: &ProtocolLimits,
) -> anyhow::Result<quinn::ServerConfig> {
    let tls = tls::rustls_config(certificate, ListenerKind::H3)?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .context("the certificate's TLS configuration cannot serve QUIC")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(limits.h3_max_streams.into())
        .keep_alive_interval(Some(QUIC_KEEP_ALIVE));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// One QUIC connection: the handshake (within the header-read timeout), then its requests,
/// each on its own task, until the client leaves or shutdown has sent GOAWAY and every
/// request it accepted is answered; then CONNECTION_CLOSE, as hyper closes an HTTP/2
/// connection after GOAWAY once its streams are done.
async fn connection(
    incoming: quinn::Incoming,
    info: Arc<ConnInfo>,
    app: Router,
    limits: ProtocolLimits,
    stop: CancellationToken,
) {
    let handshake = async {
        let quic = incoming.await?;
        let h3 = h3::server::builder()
            .max_field_section_size(limits.max_header_bytes.into())
            // No grease stream: a client answers one with STOP_SENDING (RFC 9114 §6.2), which
            // the STOP_SENDING watch below would take for a cancelled request and probe every
            // open response for, on every new connection.
            .send_grease(false)
            .build::<_, bytes::Bytes>(h3_quinn::Connection::new(quic.clone()))
            .await?;
        anyhow::Ok((quic, h3))
    };
    let (quic, mut h3) = match tokio::time::timeout(limits.header_read_timeout, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            tracing::debug!(listener = "h3", peer = ?info.peer, "handshake failed: {e:#}");
            return;
        }
        Err(_) => {
            tracing::debug!(listener = "h3", peer = ?info.peer, "handshake timed out");
            return;
        }
    };
    let (stop_sending_tx, stop_sending) = watch::channel(0);
    let watcher = tokio::spawn(watch_stop_sending(quic.clone(), stop_sending_tx));
    // The requests in flight, so that after GOAWAY the connection closes once they are
    // answered: h3's accept only ends by itself when the client says GOAWAY too.
    let mut requests = JoinSet::new();
    let mut going_away = false;
    // As on the TCP listeners, a connection must ask for something within the header-read
    // timeout: QUIC's keep-alive would otherwise hold a silent one (and its place under the
    // per-address cap) open for ever.
    let mut asked = false;
    let first_request = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(first_request);
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    asked = true;
                    requests.spawn(request::serve(
                        Box::new(resolver),
                        info.clone(),
                        quic.clone(),
                        app.clone(),
                        stop_sending.clone(),
                    ));
                }
                // After the client's GOAWAY, once every accepted request is done.
                Ok(None) => break,
                Err(e) => {
                    if !e.is_h3_no_error() {
                        tracing::debug!(listener = "h3", connection = info.id, "connection ended: {e}");
                    }
                    break;
                }
            },
            _ = &mut first_request, if !asked => {
                tracing::debug!(listener = "h3", connection = info.id, "no request within the header-read timeout");
                break;
            }
            Some(_) = requests.join_next() => {
                if going_away && requests.is_empty() {
                    break;
                }
            }
            _ = stop.cancelled(), if !going_away => {
                going_away = true;
                if let Err(e) = h3.shutdown(0).await {
                    tracing::debug!(listener = "h3", connection = info.id, "GOAWAY not sent: {e}");
                    break;
                }
                if requests.is_empty() {
                    break;
                }
            }
        }
    }
    watcher.abort();
    // Whatever is still running ends on its own when the connection closes (its body is
    // dropped then, so its stream is counted gone), as before this loop knew about it.
    requests.detach_all();
    if going_away {
        // Closing discards what QUIC has not yet delivered, such as the last frames the
        // streams just wrote: a client told GOAWAY closes once it has read them (browsers
        // do); one that does not is closed after a moment.
        let _ = tokio::time::timeout(CLOSE_LINGER, quic.closed()).await;
    }
    quic.close(no_error(), b"");
}

/// Publish QUIC's count of STOP_SENDING frames received whenever it grows, until the
/// connection closes or nobody listens.
async fn watch_stop_sending(quic: quinn::Connection, counter: watch::Sender<u64>) {
    let mut ticks = tokio::time::interval(STOP_SENDING_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = quic.closed() => return,
            _ = ticks.tick() => {}
        }
        let seen = quic.stats().frame_rx.stop_sending;
        if seen != *counter.borrow() && counter.send(seen).is_err() {
            return;
        }
    }
}

/// HTTP/3's H3_NO_ERROR as a QUIC application close code.
fn no_error() -> quinn::VarInt {
    quinn::VarInt::from_u64(h3::error::Code::H3_NO_ERROR.value()).unwrap_or(quinn::VarInt::MAX)
}
