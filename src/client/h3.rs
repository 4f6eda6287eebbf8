//! HTTP/3 in the one client: a QUIC connection (quinn) carrying HTTP/3 (h3 through h3-quinn),
//! with the same TLS configuration as the TCP side (rustls on ring, ALPN `h3`).
//!
//! Each connection has its own UDP socket (its own quinn endpoint), as each TCP connection has
//! its own port: the bench's C connections are then C sockets each driven by its own task,
//! rather than every packet of every connection going through one endpoint task.
//!
//! A request is sent whole (head, body, end of stream) before its response is awaited, which
//! is all the bench and the tests send. The response body is read DATA frame by DATA frame, so
//! an SSE event is seen when it arrives. Opening a request stream waits while the server's
//! stream limit (`initial_max_streams_bidi`, sselab's `--h3-max-streams`) is reached: QUIC
//! grants a new stream when one ends, it does not refuse a request.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use ::h3::client::{RequestStream, SendRequest};
use anyhow::Context as _;
use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};

/// `recv_data` answering `None` this many times in a row is the end of the response's DATA
/// frames, not a run of empty ones.
const NONES_AT_THE_END: u32 = 16;

/// The request sender of one HTTP/3 connection; clones share the connection.
pub(super) type H3Send = SendRequest<h3_quinn::OpenStreams, Bytes>;
type H3Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// What a QUIC client connection needs beyond the address: the TLS configuration offering
/// `h3`, made fit for QUIC (TLS 1.3 only, QUIC's initial keys).
pub fn quic_config(tls: Arc<rustls::ClientConfig>) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .context("this TLS configuration cannot be used for QUIC (it needs TLS 1.3)")?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// One HTTP/3 connection: its request sender and the QUIC connection under it.
#[derive(Clone)]
pub(super) struct H3Conn {
    send: H3Send,
    quic: quinn::Connection,
}

impl H3Conn {
    /// A QUIC connection to `addr` from a socket of its own, checking the certificate against
    /// `host`, then the HTTP/3 handshake; the connection is driven by a spawned task.
    pub async fn connect(
        addr: SocketAddr,
        host: &str,
        config: quinn::ClientConfig,
    ) -> Result<Self, String> {
        let local: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint =
            quinn::Endpoint::client(local).map_err(|e| format!("udp bind: {}", e.kind()))?;
        let quic = endpoint
            .connect_with(config, addr, host)
            .map_err(|e| format!("quic: {e}"))?
            .await
            .map_err(|e| format!("quic: {e}"))?;
        let (mut driver, send) = ::h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .map_err(|e| format!("http3 handshake: {e}"))?;
        // Runs until the connection closes: by the server, or when every sender and every
        // response body is gone (h3 then closes it with H3_NO_ERROR).
        tokio::spawn(async move {
            let _ = driver.wait_idle().await;
        });
        Ok(Self { send, quic })
    }

    pub fn is_closed(&self) -> bool {
        self.quic.close_reason().is_some()
    }

    pub fn quic(&self) -> &quinn::Connection {
        &self.quic
    }

    /// Send the request head and body, end the request stream, and wait for the response
    /// head. The body reads the rest; it holds a sender, so the connection outlives it.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<H3Body>, String> {
        let (head, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|never| match never {})
            .to_bytes();
        let mut send = self.send.clone();
        let mut stream = send
            .send_request(Request::from_parts(head, ()))
            .await
            .map_err(|e| format!("request: {e}"))?;
        let sent = async {
            if !body.is_empty() {
                stream.send_data(body).await?;
            }
            stream.finish().await
        }
        .await;
        // A server may answer (a 413, say) and stop reading before the body is all sent: the
        // answer is what the caller wants then, as with hyper.
        let response = match (stream.recv_response().await, sent) {
            (Ok(response), _) => response,
            (Err(_), Err(e)) => return Err(format!("request body: {e}")),
            (Err(e), Ok(())) => return Err(format!("response: {e}")),
        };
        let body = H3Body {
            stream: Box::new(stream),
            _send: send,
            trailers: false,
        };
        Ok(response.map(|()| body))
    }

    /// Close the QUIC connection now, as a client that goes away does.
    pub fn close(&self) {
        self.quic.close(quinn::VarInt::from_u32(0), b"");
    }
}

/// An HTTP/3 response body as an [`http_body::Body`]: each DATA frame as it arrives, then
/// the trailers if any.
pub struct H3Body {
    // Boxed: the stream is large and the body moves around (into `Events`, tasks).
    stream: Box<H3Stream>,
    /// Keeps the connection open while the body is read, as hyper does for HTTP/2.
    _send: H3Send,
    /// The DATA frames are done; trailers (or the end) come next.
    trailers: bool,
}

impl Body for H3Body {
    type Data = Bytes;
    type Error = ::h3::error::StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        // h3 0.0.8 answers `None` both at the end of the DATA frames and for a DATA frame
        // without a byte, which RFC 9114 allows any server to send (sselab's listener does
        // not). At the end, `None` repeats without reading anything; so it is the end only
        // once it has come this many times in a row.
        let mut nones = 0;
        while !this.trailers {
            match ready!(this.stream.poll_recv_data(cx)) {
                Ok(Some(mut data)) => {
                    let bytes = data.copy_to_bytes(data.remaining());
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(None) => {
                    nones += 1;
                    this.trailers = nones == NONES_AT_THE_END;
                }
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
        match ready!(this.stream.poll_recv_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}
