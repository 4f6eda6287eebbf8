//! A refusal an EventSource can retry: the answer sselab gives a browser's stream request
//! when a later try can pass (a cap is full, Redis is away, the server is restarting).
//!
//! Why: an `EventSource` reads any answer but `200 text/event-stream` as final (WHATWG HTML,
//! "fail the connection"; `Retry-After` is not read), so a `503` leaves the tab dead until
//! someone reloads it. A `200` whose body is one frame — `retry:` with the wait, one
//! `refused` event naming the reason, and no `id:` (the browser's `Last-Event-ID` stays what
//! it was) — then ends is a network-level "come back in N ms": the browser reconnects with
//! its `Last-Event-ID`, and the replay fills the gap.
//!
//! This module only names the reasons and encodes the frame; which answer a request gets
//! (this stream, or the `503` every other client gets) is the HTTP layer's choice.

use bytes::Bytes;
use serde_json::json;

use super::frame::{Frame, names};

/// Why a request was refused for now: each is a cap or a state a later try can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// `--max-streams` streams are open.
    MaxStreams,
    /// `--max-sessions` sessions exist.
    MaxSessions,
    /// `--max-topics` topics exist.
    MaxTopics,
    /// `--max-orders` orders are being worked on.
    OrdersBusy,
    /// Redis did not answer; nothing was done.
    RedisUnavailable,
    /// The server is shutting down (a restart, most likely).
    ShuttingDown,
    /// `--max-connections` connections are open (the listener's own answer).
    MaxConnections,
    /// `--max-connections-per-ip` connections are open from this address.
    MaxConnectionsPerIp,
    /// The lab's own cap for its "refused" scenario (`/sse/hello?slots=`).
    LabSlots,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 9] = [
        Self::MaxStreams,
        Self::MaxSessions,
        Self::MaxTopics,
        Self::OrdersBusy,
        Self::RedisUnavailable,
        Self::ShuttingDown,
        Self::MaxConnections,
        Self::MaxConnectionsPerIp,
        Self::LabSlots,
    ];

    /// The name in the `refused` event, the `x-sselab-refused` header and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxStreams => "max_streams",
            Self::MaxSessions => "max_sessions",
            Self::MaxTopics => "max_topics",
            Self::OrdersBusy => "orders_busy",
            Self::RedisUnavailable => "redis_unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::MaxConnections => "max_connections",
            Self::MaxConnectionsPerIp => "max_connections_per_ip",
            Self::LabSlots => "lab_slots",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How refusals are answered to a request that asked for `text/event-stream`
/// (`--refusals`); every other request gets the status either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefusalAnswer {
    /// `503` + `Retry-After`: right for an HTTP client, final for an EventSource.
    Status,
    /// `200` with one `refused` frame and its `retry:`: the browser comes back.
    #[default]
    Stream,
}

impl RefusalAnswer {
    /// The `answer` label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Stream => "stream",
        }
    }
}

/// The whole body of a refusal stream: `retry: retry_ms`, then `event: refused` with
/// `{"status":503,"reason":…,"message":…,"retry_ms":…}`, and no `id:`.
pub fn refusal_frame(reason: RefusalReason, message: &str, retry_ms: u64) -> Bytes {
    let data = json!({
        "status": 503,
        "reason": reason.as_str(),
        "message": message,
        "retry_ms": retry_ms,
    });
    Frame::new()
        .retry(retry_ms)
        .event(&names::REFUSED)
        .data(&data.to_string())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_frame_is_retry_and_one_refused_event_without_an_id() {
        let frame = refusal_frame(RefusalReason::MaxStreams, "too many\nopen streams", 5432);
        let text = std::str::from_utf8(&frame).expect("utf-8");
        assert_eq!(
            text,
            "retry: 5432\nevent: refused\ndata: {\"message\":\"too many\\nopen streams\",\
             \"reason\":\"max_streams\",\"retry_ms\":5432,\"status\":503}\n\n"
        );
        assert!(!text.contains("\nid:"));
    }

    #[test]
    fn every_reason_has_its_own_name_and_place() {
        for (at, reason) in RefusalReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), at);
            assert_eq!(
                RefusalReason::ALL
                    .iter()
                    .filter(|r| r.as_str() == reason.as_str())
                    .count(),
                1
            );
        }
    }
}
