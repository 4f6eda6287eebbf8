//! What one connection may make the server do, set on hyper (and through it h2) for every
//! listener alike: how long it may take to say what it wants, how many streams it may have,
//! how big its request headers may be, and how many streams it may reset before it is told
//! to go away. Each bound is a flag with a default chosen on purpose, so that a dependency
//! upgrade that changes hyper's or h2's own defaults changes nothing here.
//!
//! What each one stops:
//! - `header_read_timeout`: slowloris (request headers trickled a byte at a time) and TLS
//!   handshakes that never finish; the same deadline covers both.
//! - `h2_max_pending_accept_reset_streams`: HTTP/2 rapid reset (CVE-2023-44487), streams
//!   opened and reset before the server got to them. Past the bound, GOAWAY
//!   `ENHANCE_YOUR_CALM`.
//! - `h2_max_local_error_reset_streams`: a client making the server reset stream after
//!   stream for protocol errors. Past the bound, GOAWAY `ENHANCE_YOUR_CALM`.
//! - `h3_max_streams`: how many requests one HTTP/3 connection may have open; QUIC itself
//!   refuses to let a client open more (it waits for MAX_STREAMS), so there is no reset to
//!   count. HTTP/3 takes `header_read_timeout` for its handshake and `max_header_bytes` as
//!   SETTINGS_MAX_FIELD_SECTION_SIZE.
//! - `max_header_bytes`: oversized header blocks and CONTINUATION floods. HTTP/2 advertises
//!   it as SETTINGS_MAX_HEADER_LIST_SIZE, answers a block over it with 431 and refuses a
//!   block that keeps growing with GOAWAY; HTTP/1.1 caps its read buffer at it, so headers
//!   that do not fit get 431 and the connection closes.

use std::net::SocketAddr;
use std::time::Duration;

/// The per-connection protocol bounds (see the module doc for what each one stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// For the TLS handshake and the request headers of a new connection.
    pub header_read_timeout: Duration,
    /// SETTINGS_MAX_CONCURRENT_STREAMS on HTTP/2 connections.
    pub h2_max_streams: u32,
    /// The QUIC bidirectional stream limit (`initial_max_streams_bidi`) on HTTP/3
    /// connections: HTTP/3's counterpart of `h2_max_streams`.
    pub h3_max_streams: u32,
    pub h2_max_pending_accept_reset_streams: usize,
    pub h2_max_local_error_reset_streams: usize,
    pub max_header_bytes: u32,
}

/// hyper's smallest HTTP/1.1 read buffer (it panics below this): the floor for
/// `max_header_bytes`.
pub const MIN_HEADER_BYTES: u32 = 8192;

/// Apply `limits` to a listener's HTTP builder.
pub fn tune<A>(
    mut server: axum_server::Server<SocketAddr, A>,
    limits: &ProtocolLimits,
) -> axum_server::Server<SocketAddr, A> {
    let builder = server.http_builder();
    builder
        .http1()
        .header_read_timeout(Some(limits.header_read_timeout))
        // hyper asserts the floor; the flag's range already keeps above it.
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES) as usize);
    builder
        .http2()
        .max_concurrent_streams(limits.h2_max_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_bytes);
    server
}
