//! Misbehaving clients for tests/abuse.rs: raw HTTP/2 frames (`sselab::client::h2raw`) for
//! resets and header floods, slowloris connections, and the connection-level checks (did the
//! server close it, what did it answer).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use sselab::client::h2raw::{self, Frame, FrameReader, code};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{PATIENCE, TestServer};

/// Both halves of a raw HTTP/2 connection with prior knowledge (h2c).
pub struct RawH2 {
    pub reader: FrameReader<ReadHalf<TcpStream>>,
    pub writer: WriteHalf<TcpStream>,
    pub authority: String,
}

impl RawH2 {
    /// Preface and SETTINGS exchanged with the plain listener.
    pub async fn open(server: &TestServer) -> Self {
        let tcp = super::plain(server.http).await;
        let (reader, writer) = tokio::time::timeout(PATIENCE, h2raw::open(tcp))
            .await
            .expect("h2c preface in time")
            .expect("h2c preface");
        Self {
            reader,
            writer,
            authority: server.http.to_string(),
        }
    }

    pub fn get(&self, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        h2raw::get_block("http", &self.authority, path, extra)
    }

    pub async fn send(&mut self, frames: &[u8]) {
        self.writer.write_all(frames).await.expect("frames written");
        self.writer.flush().await.expect("frames flushed");
    }

    /// See [`until_answer_or_goaway`].
    pub async fn until_answer_or_goaway(&mut self, stream: u32) -> Vec<Frame> {
        until_answer_or_goaway(&mut self.reader, stream).await
    }
}

/// Every RST_STREAM and GOAWAY until the server answers HEADERS on `stream`, sends GOAWAY or
/// closes; other frames are skipped. The answer, when it came, is the last frame.
pub async fn until_answer_or_goaway<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    stream: u32,
) -> Vec<Frame> {
    let mut seen = Vec::new();
    loop {
        let frame = tokio::time::timeout(PATIENCE, reader.next())
            .await
            .expect("a frame or the end in time");
        match frame {
            Ok(Some(
                answer @ Frame::Other {
                    kind: HEADERS,
                    stream: s,
                },
            )) if s == stream => {
                seen.push(answer);
                return seen;
            }
            Ok(Some(frame @ Frame::GoAway { .. })) => {
                seen.push(frame);
                return seen;
            }
            Ok(Some(frame @ Frame::RstStream { .. })) => seen.push(frame),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return seen,
        }
    }
}

/// The HEADERS frame type, as [`Frame::Other`] carries it.
pub const HEADERS: u8 = 0x1;

/// How a rapid-reset connection ended.
#[derive(Debug)]
pub struct ResetRun {
    /// Streams opened and reset in the writes that went out.
    pub resets: u64,
    /// The server's last word: `GoAway`, or `None` if it closed without one.
    pub goaway: Option<Frame>,
}

/// Streams a rapid-reset client opens and resets per write: more than the server's default
/// bound of 20, so a server that reads a write in one go finds them all pending.
pub const RESETS_PER_WRITE: u32 = 100;

/// Open `path` and reset it at once, [`RESETS_PER_WRITE`] streams per write, on one new TLS
/// connection (ALPN h2) to `https`, as fast as the writes go, until the server ends the
/// connection (or `ceiling` resets, a failure). Frames are read on their own task, so the
/// GOAWAY is seen even when a write after it fails.
pub async fn rapid_reset(https: SocketAddr, cert_pem: &Path, path: &str, ceiling: u64) -> ResetRun {
    let tls = super::tls(https, cert_pem, &[b"h2"]).await;
    let (mut reader, mut writer) = tokio::time::timeout(PATIENCE, h2raw::open(tls))
        .await
        .expect("HTTP/2 preface in time")
        .expect("HTTP/2 preface");
    let listening = tokio::spawn(async move {
        loop {
            match reader.next().await {
                Ok(Some(goaway @ Frame::GoAway { .. })) => return Some(goaway),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    });
    let block = h2raw::get_block("https", &format!("localhost:{}", https.port()), path, &[]);
    let mut resets = 0u64;
    let mut next_stream = 1u32;
    let mut batch = Vec::new();
    while !listening.is_finished() {
        assert!(
            resets < ceiling,
            "{resets} streams reset and the server still talks"
        );
        batch.clear();
        for _ in 0..RESETS_PER_WRITE {
            h2raw::headers(&mut batch, next_stream, &block, true, true);
            h2raw::rst_stream(&mut batch, next_stream, code::CANCEL);
            next_stream += 2;
        }
        if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
            break;
        }
        resets += u64::from(RESETS_PER_WRITE);
    }
    let goaway = tokio::time::timeout(PATIENCE, listening)
        .await
        .expect("the server ends the connection in time")
        .expect("reader task");
    ResetRun { resets, goaway }
}

/// A TCP connection from `local` (any 127.0.0.0/8 address is this machine) to `server`.
pub async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse().expect("local address"))
        .expect("bind the local address");
    tokio::time::timeout(PATIENCE, socket.connect(server))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Everything the server writes until it closes the connection, as text.
pub async fn read_to_close(mut io: impl AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, io.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection in time");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// How long a slowloris connection lived, from connect until the server closed it.
pub type Lifetime = Duration;

/// Trickle an HTTP/1.1 request's headers one byte per `every`, never finishing them, until
/// the server closes the connection or `stop`; gives how long it lived, or `None` if stopped.
pub async fn trickle<IO>(
    mut io: IO,
    since: Instant,
    every: Duration,
    stop: CancellationToken,
) -> Option<Lifetime>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let head = b"GET /sse/hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".iter();
    let mut pad = head.chain(std::iter::repeat(&b'a'));
    let mut buf = [0u8; 1];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            // Anything read (a 408, say) or the end: the server is done with us.
            _ = io.read(&mut buf) => return Some(since.elapsed()),
            _ = tokio::time::sleep(every) => {
                let byte = [*pad.next().expect("endless")];
                if io.write_all(&byte).await.is_err() || io.flush().await.is_err() {
                    return Some(since.elapsed());
                }
            }
        }
    }
}

/// Send nothing, so a TLS handshake never starts, until the server closes or `stop`.
pub async fn stall(
    mut tcp: TcpStream,
    since: Instant,
    stop: CancellationToken,
) -> Option<Lifetime> {
    let mut buf = [0u8; 1];
    tokio::select! {
        _ = stop.cancelled() => None,
        _ = tcp.read(&mut buf) => Some(since.elapsed()),
    }
}

/// A TLS (ALPN http/1.1) connection to `addr` whose handshake completed.
pub async fn tls_h1(
    addr: SocketAddr,
    cert_pem: &Path,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    super::tls(addr, cert_pem, &[b"http/1.1"]).await
}
