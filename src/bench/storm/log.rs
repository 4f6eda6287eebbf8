//! What one storm client did: every attempt it made, in order, and how each was answered.
//! The client writes it as it goes; the report reads it once the run stopped.

use tokio::time::Instant;

/// One attempt to open the stream.
#[derive(Debug, Clone)]
pub(super) struct Try {
    /// When the request went out (after the wait the previous answer asked for).
    pub sent: Instant,
    /// It carried a `Last-Event-ID` (the client had seen an `id:`).
    pub resumed: bool,
    pub answer: Answer,
}

/// How an attempt was answered.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    /// The run stopped before it was answered.
    Pending,
    /// A stream; `ended` when the server ended it (`None`: still open when the run stopped).
    Stream { ended: Option<Instant> },
    /// A refusal stream (`200`, one `refused` event, its `retry:`), read to its end.
    Refused {
        reason: String,
        /// When its body ended: the moment a browser starts waiting `retry:`.
        ended: Instant,
        /// The `retry:` it told, if it sent one.
        told_ms: Option<u64>,
        /// It carried an `id:` (it must not: the browser's `Last-Event-ID` would move).
        with_id: bool,
    },
    /// No server answered (connect refused, reset, timed out): tried again after `retry:`.
    NoServer(String),
    /// An answer a browser gives up on (a status, not an event stream): the client stopped.
    Final(String),
}
