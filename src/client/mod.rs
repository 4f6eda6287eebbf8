//! One HTTP/1.1 + HTTP/2 + HTTP/3 client, over TCP, TLS or QUIC, for the load generator and
//! the tests alike.
//!
//! It is hyper's connection-level client, not a pooled one, on purpose: the bench and the
//! tests decide how many connections exist and which request goes on which (six HTTP/1.1
//! connections against one multiplexed HTTP/2 connection is what this lab is about). It does
//! not pool, retry, follow redirects or pick a protocol from ALPN: the caller handshakes the
//! protocol it means to test. [`h2raw`] is the exception that proves the rule: hand-written
//! HTTP/2 frames for what no well-behaved client sends, to test the server's defences.
//!
//! Errors are one-line strings (a bench stream counts them by reason); nothing here panics.

mod body;
mod get;
pub mod h2raw;
mod h3;
mod target;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use self::h3::H3Conn;
pub use self::h3::{H3Body, quic_config};
pub use body::{BodyError, ResponseBody};
pub use get::get_body;
pub use target::{Proto, Target};
pub use tls::{Trust, connect_tls, tls_config};

/// The HTTP/2 receive windows a connection offers; `None` keeps hyper's own (2 MiB a stream,
/// 5 MiB the connection). h2 sizes its budget for small DATA frames from the connection
/// window (half of it), so hyper's defaults already let many streams sit unread without the
/// client closing its own connection (ENHANCE_YOUR_CALM).
#[derive(Debug, Clone, Copy, Default)]
pub struct H2Windows {
    pub stream: Option<u32>,
    pub connection: Option<u32>,
}

/// One HTTP connection. Clones share it: HTTP/2 and HTTP/3 multiplex their requests; HTTP/1.1
/// takes them one at a time, each after the previous response was read whole.
#[derive(Clone)]
pub struct Conn(Sender);

#[derive(Clone)]
enum Sender {
    // A lock, since an HTTP/1.1 connection carries one request at a time.
    H1(Arc<tokio::sync::Mutex<http1::SendRequest<Full<Bytes>>>>),
    H2(http2::SendRequest<Full<Bytes>>),
    H3(H3Conn),
}

/// A TCP connection with Nagle off: SSE frames are small and wanted now.
pub async fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl Conn {
    /// Speak HTTP/1.1 over `io`; the connection is driven by a spawned task.
    pub async fn handshake_h1<IO>(io: IO) -> Result<Conn, String>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("http1 handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Conn(Sender::H1(Arc::new(tokio::sync::Mutex::new(send)))))
    }

    /// Speak HTTP/2 (prior knowledge, or after ALPN h2) over `io` with these windows.
    pub async fn handshake_h2<IO>(io: IO, windows: H2Windows) -> Result<Conn, String>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(windows.stream)
            .initial_connection_window_size(windows.connection)
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("http2 handshake: {e}"))?;
        tokio::spawn(conn);
        Ok(Conn(Sender::H2(send)))
    }

    /// Speak HTTP/3 over a new QUIC connection to `addr` (its own UDP socket), checking the
    /// certificate against `host`; `config` offers ALPN h3 ([`quic_config`]).
    pub async fn connect_h3(
        addr: SocketAddr,
        host: &str,
        config: quinn::ClientConfig,
    ) -> Result<Conn, String> {
        Ok(Conn(Sender::H3(H3Conn::connect(addr, host, config).await?)))
    }

    /// Close the connection now, as a client that goes away does (HTTP/3: CONNECTION_CLOSE).
    /// HTTP/1.1 and HTTP/2 connections close when their last clone and body are dropped.
    pub fn close(&self) {
        if let Sender::H3(conn) = &self.0 {
            conn.close();
        }
    }

    /// The connection is gone (closed by either side, or after GOAWAY): nothing more can be
    /// sent on it. An HTTP/1.1 connection busy with a request counts as open.
    pub fn is_closed(&self) -> bool {
        match &self.0 {
            Sender::H1(send) => send.try_lock().is_ok_and(|send| send.is_closed()),
            Sender::H2(send) => send.is_closed(),
            Sender::H3(conn) => conn.is_closed(),
        }
    }

    /// The QUIC connection under an HTTP/3 connection (`None` over TCP), for what QUIC itself
    /// knows: the stream credit the server granted, the connection's statistics.
    pub fn quic(&self) -> Option<&quinn::Connection> {
        match &self.0 {
            Sender::H3(conn) => Some(conn.quic()),
            Sender::H1(_) | Sender::H2(_) => None,
        }
    }

    /// A request builder with the URI form the protocol wants: origin-form plus Host for
    /// HTTP/1.1 (as browsers send), the absolute URI for HTTP/2 and HTTP/3 (made :scheme and
    /// :authority).
    pub fn request(&self, method: &str, uri: &Uri) -> http::request::Builder {
        let builder = Request::builder().method(method);
        match &self.0 {
            Sender::H1(_) => builder
                .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(
                    http::header::HOST,
                    uri.authority().map_or("", |a| a.as_str()),
                ),
            Sender::H2(_) => builder.uri(uri.clone()).version(http::Version::HTTP_2),
            Sender::H3(_) => builder.uri(uri.clone()).version(http::Version::HTTP_3),
        }
    }

    /// Send `request` once the connection is ready; resolves with the response head.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<ResponseBody>, String> {
        let not_ready = |e: hyper::Error| format!("connection: {e}");
        let response = match &self.0 {
            Sender::H3(conn) => {
                let response = conn.send(request).await?;
                return Ok(response.map(ResponseBody::H3));
            }
            Sender::H1(send) => {
                let mut send = send.lock().await;
                send.ready().await.map_err(not_ready)?;
                send.send_request(request).await
            }
            Sender::H2(send) => {
                let mut send = send.clone();
                send.ready().await.map_err(not_ready)?;
                send.send_request(request).await
            }
        };
        response
            .map(|response| response.map(ResponseBody::Hyper))
            .map_err(|e| format!("request: {e}"))
    }
}
