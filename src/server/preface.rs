//! The plain listener speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c). hyper-util tells
//! them apart by reading the first bytes (up to the 24 of the HTTP/2 preface) and replaying
//! them to hyper. That replay costs every idle HTTP/1.1 connection 8 KiB: hyper's first read
//! gets only the replayed bytes, the request is incomplete, and to read the rest hyper reserves
//! another 8 KiB in its 8 KiB read buffer, which doubles it to 16 KiB for the connection's life.
//!
//! [`PeekAcceptor`] hands hyper-util a [`PeekPreface`] stream instead. Its first read looks at
//! the waiting bytes without taking them (`MSG_PEEK`); when they cannot be the start of the
//! preface it answers with no bytes, which hyper-util takes as "not HTTP/2" and replays
//! nothing, so hyper then reads the whole request head into its 8 KiB buffer. When they could
//! be the preface (or the peek sees too little to tell), it reads as usual and hyper-util
//! decides as before. Only for hyper-util's auto builder: a reader that took the empty first
//! read for end of stream would close the connection.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::conn::{ConnAcceptor, WithConn};

/// What a client speaking HTTP/2 with prior knowledge sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// [`ConnAcceptor`] for the plain listener, handing out [`PeekPreface`] streams.
#[derive(Debug, Clone)]
pub struct PeekAcceptor(pub ConnAcceptor);

impl<S> Accept<TcpStream, S> for PeekAcceptor {
    type Stream = PeekPreface;
    type Service = WithConn<S>;
    type Future = Ready<io::Result<(PeekPreface, WithConn<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        ready(
            self.0
                .accept(stream, service)
                .into_inner()
                .map(|(stream, service)| {
                    (
                        PeekPreface {
                            stream,
                            peeked: false,
                        },
                        service,
                    )
                }),
        )
    }
}

/// A TCP stream whose first read answers hyper-util's HTTP/2 preface check without taking
/// the bytes when they are plainly not the preface (see the module doc).
#[derive(Debug)]
pub struct PeekPreface {
    stream: TcpStream,
    peeked: bool,
}

impl AsyncRead for PeekPreface {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.peeked {
            let mut first = [0; H2_PREFACE.len()];
            let mut first = ReadBuf::new(&mut first);
            let seen = ready!(this.stream.poll_peek(cx, &mut first))?;
            this.peeked = true;
            if seen > 0 && !H2_PREFACE.starts_with(first.filled()) {
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeekPreface {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The server's end of a connection on which `first` was sent, and the client's end
    /// (kept open: the server must not see the end of the stream).
    async fn pair(first: &[u8]) -> io::Result<(PeekPreface, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut client = TcpStream::connect(listener.local_addr()?).await?;
        client.write_all(first).await?;
        let (stream, _) = listener.accept().await?;
        let stream = PeekPreface {
            stream,
            peeked: false,
        };
        Ok((stream, client))
    }

    #[tokio::test]
    async fn http1_first_read_is_empty_then_the_whole_request() -> io::Result<()> {
        let request = b"GET /sse/topics/a HTTP/1.1\r\nhost: x\r\n\r\n";
        let (mut stream, _client) = pair(request).await?;
        let mut sniff = [0; 24];
        assert_eq!(stream.read(&mut sniff).await?, 0);
        let mut whole = vec![0; request.len()];
        stream.read_exact(&mut whole).await?;
        assert_eq!(whole, request);
        Ok(())
    }

    #[tokio::test]
    async fn the_http2_preface_is_read_as_usual() -> io::Result<()> {
        let (mut stream, _client) = pair(H2_PREFACE).await?;
        let mut sniff = [0; 24];
        stream.read_exact(&mut sniff).await?;
        assert_eq!(&sniff[..], H2_PREFACE);
        Ok(())
    }
}
