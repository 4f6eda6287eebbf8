//! Server-Sent Events, independent of any HTTP framework: the wire encoder ([`Frame`],
//! [`EventName`]), the one stream driver every endpoint uses ([`drive`]: keep-alive, timeout,
//! token expiry, shutdown), the registry that counts open streams and logs each end once
//! ([`StreamRegistry`]), each stream's `retry:` with its jitter and shutdown spread
//! ([`RetryPolicy`]), the refusal an EventSource can retry ([`refusal_frame`]), and a
//! spec-conformant parser for sselab's own clients ([`parser`]).
//!
//! It never imports the HTTP layer or axum: an SSE body here is a plain
//! `Stream<Item = Result<Bytes, Infallible>>`, and the HTTP layer wraps it in a response.

mod close;
mod drive;
mod ending;
mod frame;
pub mod parser;
mod refusal;
mod retry;
mod streams;

pub use close::CloseReason;
pub use drive::{Drive, Lifetime, Out, TokenExpiry, drive, nonzero_secs};
pub use ending::Ending;
pub use frame::{EventName, Frame, KEEPALIVE_COMMENT, names};
pub use refusal::{RefusalAnswer, RefusalReason, refusal_frame};
pub use retry::{MAX_RETRY_JITTER, RetryPolicy, StreamRetry, parse_jitter};
pub use streams::{
    ConnectionStreams, OpenStreams, SlotValues, StreamGuard, StreamRefused, StreamRegistry,
    StreamStats,
};

/// The seed's server default: Spring's async request timeout of 30 s ends every stream.
pub const SEED_STREAM_TIMEOUT_SECS: u64 = 30;
/// The seed's `reconnectTime(5000)`: the `retry:` field sent in the first frame.
pub const SEED_RETRY_MS: u64 = 5000;
/// Largest stream timeout a query or flag may ask for (one day); longer is almost surely a
/// typo.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Largest `retry:` a query or flag may ask for (one hour).
pub const MAX_RETRY_MS: u64 = 3_600_000;
/// The default `--drain-spread`: at shutdown, streams are told to come back over 5 s.
pub const DRAIN_SPREAD_SECS: u64 = 5;
/// The default `--retry-jitter`: each stream's `retry:` is up to 20 % longer.
pub const RETRY_JITTER: f64 = 0.2;
