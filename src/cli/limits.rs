//! The flags that bound what clients may cost the server: connection caps and the HTTP/2
//! and header limits that stop protocol abuse (rapid reset, CONTINUATION floods, oversized
//! headers). `--header-read-timeout` (slowloris) and `--h2-max-streams` sit with the other
//! serve flags, as they came first. Each default is explained in the README's
//! "Connection limits and protocol abuse".

use clap::Args;

use crate::server::limits::MIN_HEADER_BYTES;

/// Each address's share when no flag says otherwise: twice the largest single-host run of
/// the lab (10k connections from 127.0.0.1 in BENCHMARKS.md), so benches and tests never
/// meet it; an exposed server should lower it.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 20_000;

#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Connections open at once over all listeners (the --metrics listener aside); more are
    /// turned away: TLS closed before the handshake, plain HTTP told why once its request
    /// arrived (an EventSource gets a stream it comes back from, others a 503 with
    /// Retry-After). Default: the open-file limit (`ulimit -n`) minus 96, the point where
    /// accepting would fail anyway.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000),
          env = "SSELAB_MAX_CONNECTIONS")]
    pub max_connections: Option<u64>,

    /// Connections open at once from one peer address; more are closed like those over
    /// --max-connections. Behind a reverse proxy every client is the proxy's address.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000),
          env = "SSELAB_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: u64,

    /// Largest request header block, in bytes: HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE and the
    /// HTTP/1.1 read buffer. Bigger headers get 431; an HTTP/2 block that keeps growing
    /// (a CONTINUATION flood) gets GOAWAY.
    #[arg(long, value_name = "BYTES", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(MIN_HEADER_BYTES as i64..=1_048_576),
          env = "SSELAB_MAX_HEADER_BYTES")]
    pub max_header_bytes: u32,

    /// HTTP/2 rapid reset (CVE-2023-44487): streams a client may open and reset before the
    /// server got to them; one more and the connection gets GOAWAY ENHANCE_YOUR_CALM.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=100_000),
          env = "SSELAB_H2_MAX_PENDING_ACCEPT_RESET_STREAMS")]
    pub h2_max_pending_accept_reset_streams: u64,

    /// HTTP/2 streams the server may reset for a client's protocol errors over a
    /// connection's life; one more and the connection gets GOAWAY ENHANCE_YOUR_CALM.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000),
          env = "SSELAB_H2_MAX_LOCAL_ERROR_RESET_STREAMS")]
    pub h2_max_local_error_reset_streams: u64,
}
