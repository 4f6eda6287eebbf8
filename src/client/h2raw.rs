//! Hand-written HTTP/2 frames, for what a well-behaved client (hyper, h2) never sends: a
//! stream reset the moment it opens (rapid reset), a header no server may accept, a header
//! block that never ends (a CONTINUATION flood). `sselab bench attack` and the abuse tests
//! use it. Reading goes only as far as answering the server's SETTINGS and seeing RST_STREAM
//! and GOAWAY; every other frame is skipped.
//!
//! HPACK here is literals only, never indexed (RFC 7541 §6.2.2), so no compression state is
//! shared with the server and any block can be sent any number of times, in any order.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// The connection preface every HTTP/2 client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest frame payload a peer must accept before SETTINGS say otherwise (RFC 9113 §4.2).
pub const DEFAULT_MAX_FRAME: usize = 16_384;

/// Frame types (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

/// Flags.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// An error code as RFC 9113 names it.
pub fn error_name(error: u32) -> String {
    match error {
        code::NO_ERROR => "NO_ERROR".into(),
        code::PROTOCOL_ERROR => "PROTOCOL_ERROR".into(),
        code::REFUSED_STREAM => "REFUSED_STREAM".into(),
        code::CANCEL => "CANCEL".into(),
        code::COMPRESSION_ERROR => "COMPRESSION_ERROR".into(),
        code::ENHANCE_YOUR_CALM => "ENHANCE_YOUR_CALM".into(),
        other => format!("error 0x{other:x}"),
    }
}

/// An HPACK integer with an `prefix_bits`-bit prefix, the first byte's high bits `flags`.
fn integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, text: &[u8]) {
    integer(out, 0x00, 7, text.len()); // not Huffman-coded
    out.extend_from_slice(text);
}

/// Append one header field to an HPACK block: a literal without indexing, with a literal name.
pub fn field(block: &mut Vec<u8>, name: &str, value: &str) {
    block.push(0x00);
    string(block, name.as_bytes());
    string(block, value.as_bytes());
}

/// The HPACK block of `GET scheme://authority path`, with `extra` fields after the pseudo ones.
pub fn get_block(scheme: &str, authority: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "GET"),
        (":scheme", scheme),
        (":authority", authority),
        (":path", path),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        field(&mut block, name, value);
    }
    block
}

/// Append one frame.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let length = payload.len() as u32;
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A HEADERS frame carrying `block` (which must fit in [`DEFAULT_MAX_FRAME`]).
pub fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, end_headers: bool) {
    let flags = if end_stream { END_STREAM } else { 0 } | if end_headers { END_HEADERS } else { 0 };
    frame(out, HEADERS, flags, stream, block);
}

/// A CONTINUATION frame carrying more of a header block.
pub fn continuation(out: &mut Vec<u8>, stream: u32, block: &[u8], end_headers: bool) {
    let flags = if end_headers { END_HEADERS } else { 0 };
    frame(out, CONTINUATION, flags, stream, block);
}

pub fn rst_stream(out: &mut Vec<u8>, stream: u32, error: u32) {
    frame(out, RST_STREAM, 0, stream, &error.to_be_bytes());
}

/// What the server sent, as far as this module cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Settings {
        ack: bool,
    },
    RstStream {
        stream: u32,
        error: u32,
    },
    GoAway {
        last_stream: u32,
        error: u32,
    },
    /// HEADERS, DATA, WINDOW_UPDATE…: only its type and stream.
    Other {
        kind: u8,
        stream: u32,
    },
}

/// Reads whole frames off a connection.
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(DEFAULT_MAX_FRAME + 9),
        }
    }

    /// The next frame; `None` when the server closed the connection.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if self.buf.len() >= 9 {
                let length =
                    u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + length {
                    let (kind, flags) = (self.buf[3], self.buf[4]);
                    let stream = u32_at(&self.buf, 5) & 0x7fff_ffff;
                    let payload = &self.buf[9..9 + length];
                    let frame = match kind {
                        SETTINGS => Frame::Settings {
                            ack: flags & ACK != 0,
                        },
                        RST_STREAM if length >= 4 => Frame::RstStream {
                            stream,
                            error: u32_at(payload, 0),
                        },
                        GOAWAY if length >= 8 => Frame::GoAway {
                            last_stream: u32_at(payload, 0) & 0x7fff_ffff,
                            error: u32_at(payload, 4),
                        },
                        _ => Frame::Other { kind, stream },
                    };
                    self.buf.advance(9 + length);
                    return Ok(Some(frame));
                }
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Start HTTP/2 on `io` (prior knowledge, or TLS after ALPN h2): the preface and an empty
/// SETTINGS, then acknowledge the server's SETTINGS. Gives the two halves to read frames
/// from and write them to.
pub async fn open<IO>(io: IO) -> std::io::Result<(FrameReader<ReadHalf<IO>>, WriteHalf<IO>)>
where
    IO: AsyncRead + AsyncWrite,
{
    let (read, mut write) = tokio::io::split(io);
    let mut start = PREFACE.to_vec();
    frame(&mut start, SETTINGS, 0, 0, &[]);
    write.write_all(&start).await?;
    // TLS keeps what it could not send yet until flushed.
    write.flush().await?;
    let mut reader = FrameReader::new(read);
    loop {
        match reader.next().await? {
            Some(Frame::Settings { ack: false }) => break,
            Some(Frame::GoAway { error, .. }) => {
                return Err(std::io::Error::other(format!(
                    "GOAWAY {} before SETTINGS",
                    error_name(error)
                )));
            }
            Some(_) => {}
            None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
    let mut ack = Vec::new();
    frame(&mut ack, SETTINGS, ACK, 0, &[]);
    write.write_all(&ack).await?;
    write.flush().await?;
    Ok((reader, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_follow_rfc_7541_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        integer(&mut out, 0, 5, 10);
        assert_eq!(out, [0x0a]);
        out.clear();
        integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    }

    #[tokio::test]
    async fn a_frame_written_is_the_frame_read() {
        let mut bytes = Vec::new();
        rst_stream(&mut bytes, 7, code::CANCEL);
        frame(&mut bytes, GOAWAY, 0, 0, &[0, 0, 0, 9, 0, 0, 0, 0xb]);
        headers(&mut bytes, 9, &get_block("http", "x", "/", &[]), true, true);
        let mut reader = FrameReader::new(&bytes[..]);
        assert_eq!(
            reader.next().await.ok().flatten(),
            Some(Frame::RstStream {
                stream: 7,
                error: code::CANCEL
            })
        );
        assert_eq!(
            reader.next().await.ok().flatten(),
            Some(Frame::GoAway {
                last_stream: 9,
                error: code::ENHANCE_YOUR_CALM
            })
        );
        assert_eq!(
            reader.next().await.ok().flatten(),
            Some(Frame::Other {
                kind: HEADERS,
                stream: 9
            })
        );
        assert_eq!(reader.next().await.ok().flatten(), None);
    }
}
