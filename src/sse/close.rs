//! Why a stream ended: one reason per stream, counted by the registry and logged once.

use std::fmt;

/// Why a stream ended; `client-gone` unless something else said otherwise first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed the connection or the HTTP/2 stream.
    ClientGone,
    /// The stream's timeout expired (the seed's 30 s).
    Timeout,
    /// The content ended by itself (the demo's whole minute).
    End,
    /// The server is shutting down.
    Shutdown,
    /// The subscriber's queue was full: it fell behind and resumes from the replay ring.
    Slow,
    /// The same session id subscribed again and took over.
    Replaced,
    /// The session was deleted (`DELETE /api/sessions/{id}`).
    Bye,
    /// The token the stream was opened with stopped being accepted (`exp` plus the leeway).
    TokenExpired,
}

impl CloseReason {
    pub const ALL: [CloseReason; 8] = [
        Self::ClientGone,
        Self::Timeout,
        Self::End,
        Self::Shutdown,
        Self::Slow,
        Self::Replaced,
        Self::Bye,
        Self::TokenExpired,
    ];

    pub(super) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientGone => "client-gone",
            Self::Timeout => "timeout",
            Self::End => "end",
            Self::Shutdown => "shutdown",
            Self::Slow => "slow",
            Self::Replaced => "replaced",
            Self::Bye => "bye",
            Self::TokenExpired => "token-expired",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
