//! `sselab serve`'s flags: the listeners, the certificate, stream timing and reconnects, the
//! pub/sub bounds. Auth and connection limits are flattened in from their own files.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{AuthArgs, CertArgs, LimitArgs, LogArgs};
use crate::pubsub::multi::MAX_TOPICS_PER_STREAM;
use crate::server::Bind;
use crate::sse::{
    DRAIN_SPREAD_SECS, MAX_RETRY_MS, MAX_TIMEOUT_SECS, RETRY_JITTER, SEED_RETRY_MS,
    SEED_STREAM_TIMEOUT_SECS, nonzero_secs, parse_jitter,
};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Plain HTTP/1.1 listener (also answers HTTP/2 with prior knowledge, h2c), or `off`.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "SSELAB_HTTP"
    )]
    pub http: Bind,

    /// HTTPS listener offering ALPN h2 then http/1.1, or `off`.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8443",
        env = "SSELAB_HTTPS"
    )]
    pub https: Bind,

    /// HTTPS listener offering only http/1.1: TLS alone does not lift the 6-per-host limit.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8444",
        env = "SSELAB_HTTPS_H1"
    )]
    pub https_h1: Bind,

    /// HTTP/3 listener (QUIC, UDP) with ALPN h3, or `off`. The same port number as --https,
    /// as browsers expect of an `Alt-Svc: h3=":PORT"` they learn there.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8443",
        env = "SSELAB_H3"
    )]
    pub h3: Bind,

    /// Do not send `Alt-Svc: h3=":PORT"` on the HTTPS listener's answers (browsers then only
    /// use HTTP/3 when told to, e.g. Chromium's --origin-to-force-quic-on).
    #[arg(long, env = "SSELAB_NO_ALT_SVC")]
    pub no_alt_svc: bool,

    /// Also serve /metrics on its own plain-HTTP listener at this address (it is always on
    /// every listener too).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "off",
        env = "SSELAB_METRICS"
    )]
    pub metrics: Bind,

    #[command(flatten)]
    pub cert: CertArgs,

    /// Throw away the certificate in --cert-dir and generate a new one.
    #[arg(long, env = "SSELAB_REGEN_CERT")]
    pub regen_cert: bool,

    /// Seconds before the server ends a /sse/hello stream (0 = never expire).
    #[arg(long, value_name = "SECS", default_value_t = SEED_STREAM_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS),
          env = "SSELAB_TIMEOUT")]
    pub timeout: u64,

    /// The `retry:` reconnect delay, in milliseconds, sent in every stream's first frame.
    #[arg(long, value_name = "MS", default_value_t = SEED_RETRY_MS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RETRY_MS),
          env = "SSELAB_RETRY")]
    pub retry: u64,

    /// Make each stream's `retry:` up to this fraction longer, drawn at random per stream
    /// (0.2: from 5000 to 6000 ms), so clients do not all come back at the same moment;
    /// 0 = off. A `?retry=` the client asks for is sent as asked.
    #[arg(long, value_name = "FRACTION", default_value_t = RETRY_JITTER,
          value_parser = parse_jitter, env = "SSELAB_RETRY_JITTER")]
    pub retry_jitter: f64,

    /// At shutdown, first send each open stream a last frame whose `retry:` is drawn from
    /// retry to retry + this many seconds, so a restart is not met by every client at once;
    /// 0 = off (streams just end).
    #[arg(long, value_name = "SECS", default_value_t = DRAIN_SPREAD_SECS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RETRY_MS / 1000),
          env = "SSELAB_DRAIN_SPREAD")]
    pub drain_spread: u64,

    /// How a refusal a later try can pass (a full cap, Redis away, shutting down) is answered
    /// to an EventSource (a request with `Accept: text/event-stream`): `stream` = 200 with
    /// `retry:` and one `event: refused`, so the browser comes back; `status` = 503 +
    /// Retry-After, which an EventSource treats as final (the lab shows both). Other
    /// clients always get the 503.
    #[arg(
        long,
        value_name = "HOW",
        default_value = "stream",
        env = "SSELAB_REFUSALS"
    )]
    pub refusals: Refusals,

    /// Seconds between keep-alive comments on an idle stream (0 = off).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 15,
        env = "SSELAB_KEEPALIVE"
    )]
    pub keepalive: u64,

    /// Milliseconds between clock ticks.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000),
          env = "SSELAB_TICK_MS")]
    pub tick_ms: u64,

    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised on HTTP/2 connections.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..),
          env = "SSELAB_H2_MAX_STREAMS")]
    pub h2_max_streams: u32,

    /// How many requests (streams) one HTTP/3 connection may have open: QUIC's
    /// initial_max_streams_bidi, the HTTP/3 counterpart of --h2-max-streams.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..),
          env = "SSELAB_H3_MAX_STREAMS")]
    pub h3_max_streams: u32,

    /// Seconds a new connection may take to finish its TLS handshake and request headers.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600),
          env = "SSELAB_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: u64,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Cap on SSE streams open at once over all listeners; more are refused (see --refusals).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        env = "SSELAB_MAX_STREAMS"
    )]
    pub max_streams: usize,

    /// Seconds shutdown may take before open connections are cut.
    #[arg(long, value_name = "SECS", default_value_t = 5, env = "SSELAB_GRACE")]
    pub grace: u64,

    /// The demo clock (/sse/demo) ends at the next whole multiple of this many seconds
    /// on the wall clock; 60 is the seed's "next whole minute".
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600),
          env = "SSELAB_DEMO_PERIOD")]
    pub demo_period: u64,

    /// Events each session, topic and order keeps for Last-Event-ID replay.
    #[arg(long, value_name = "N", default_value_t = 256, env = "SSELAB_REPLAY")]
    pub replay: usize,

    /// Seconds a disconnected session (or unwatched topic) keeps its events and accepts posts.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60,
        env = "SSELAB_SESSION_LINGER"
    )]
    pub session_linger: u64,

    /// Events queued per subscriber; one that falls further behind is cut as `slow`.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000),
          env = "SSELAB_QUEUE")]
    pub queue: u64,

    /// When a session id subscribes while already connected: replace the older stream, or
    /// reject the newcomer with 409.
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "replace",
        env = "SSELAB_SAME_ID"
    )]
    pub same_id: SameId,

    /// Cap on sessions (connected or lingering); more are refused (see --refusals).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        env = "SSELAB_MAX_SESSIONS"
    )]
    pub max_sessions: usize,

    /// Cap on topics; more are refused (see --refusals).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        env = "SSELAB_MAX_TOPICS"
    )]
    pub max_topics: usize,

    /// Most topics one stream may follow (`/sse/topics?topic=a&topic=b…`); more is a 400.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        value_parser = clap::value_parser!(u16).range(1..=MAX_TOPICS_PER_STREAM as i64),
        env = "SSELAB_MAX_TOPICS_PER_STREAM"
    )]
    pub max_topics_per_stream: u16,

    /// Cap on orders being worked on at once; more are refused (see --refusals).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        env = "SSELAB_MAX_ORDERS"
    )]
    pub max_orders: usize,

    /// Origin allowed by CORS: `*`, or a comma-separated list like https://a.example,http://b:8080.
    #[arg(
        long,
        value_name = "ORIGIN",
        default_value = "*",
        env = "SSELAB_CORS_ORIGIN"
    )]
    pub cors_origin: String,

    /// Share topics, sessions and orders with other sselab nodes through this Redis:
    /// redis://host:6379 (rediss:// for TLS) for one node or any node of a cluster (found and
    /// followed: sharded pub/sub, failovers), redis+sentinel://host:26379[,host:port…]/MASTER
    /// (rediss+sentinel:// for TLS) for the master Sentinel names. Without it, everything
    /// stays in this process.
    #[arg(long, value_name = "URL", env = "SSELAB_REDIS")]
    pub redis: Option<String>,

    /// Trust this PEM CA certificate for a rediss:// Redis (one with its own CA) instead of
    /// the system's roots.
    #[arg(long, value_name = "FILE", env = "SSELAB_REDIS_CA", requires = "redis")]
    pub redis_ca: Option<PathBuf>,

    /// Answer a publish 202 only once its event reached this many replicas (Redis `WAIT`,
    /// at most 1 s; else 503, the event perhaps delivered). 0: once the master has it.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "SSELAB_REDIS_MIN_REPLICAS",
        requires = "redis"
    )]
    pub redis_min_replicas: usize,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

impl ServeArgs {
    pub fn stream_timeout(&self) -> Option<Duration> {
        nonzero_secs(self.timeout)
    }

    pub fn keepalive_interval(&self) -> Option<Duration> {
        nonzero_secs(self.keepalive)
    }
}

/// `--refusals`: how an EventSource is told "not now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Refusals {
    /// 200 text/event-stream: `retry:` and one `event: refused`; the browser comes back.
    Stream,
    /// 503 + Retry-After, as for every other client: the EventSource gives up.
    Status,
}

/// What a second subscribe with the same session id does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SameId {
    /// The older stream gets `event: replaced` and closes.
    Replace,
    /// The newcomer gets 409 Conflict.
    Reject,
}
