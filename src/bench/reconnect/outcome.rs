//! What happened to one stream of a reconnect run: the run records it as it goes, the report
//! sums it up.

use std::time::Duration;

use tokio::time::Instant;

/// What happened to one stream.
#[derive(Debug, Clone, Default)]
pub(super) struct Outcome {
    pub established: bool,
    /// When the server ended the stream (its restart, as this client saw it).
    pub ended_at: Option<Instant>,
    /// The `retry:` in force when it ended.
    pub retry_ms: Option<u64>,
    /// When a reconnect was answered with a stream.
    pub reconnected_at: Option<Instant>,
    /// How long that answer took, from the attempt (connect included): a storm queues here.
    pub answer_took: Option<Duration>,
    /// The reconnect sent a `Last-Event-ID` (the stream had seen an `id:`).
    pub resumed: bool,
    /// Reconnect attempts that found no server and waited another `retry:`.
    pub without_server: u64,
    /// Reconnect attempts answered with a refusal stream, that waited the `retry:` it gave.
    pub refused: u64,
    /// Why it never opened, or why it gave up reconnecting (as a browser does on an answer
    /// that is not a 200 event stream).
    pub failure: Option<String>,
}

impl Outcome {
    /// Nothing more will happen to it.
    pub fn settled(&self) -> bool {
        self.failure.is_some() || self.reconnected_at.is_some()
    }
}
