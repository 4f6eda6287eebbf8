//! The registry of open SSE streams: the global cap, per-protocol totals, and the guard that
//! logs and counts every stream's end exactly once.
//!
//! A [`StreamGuard`] lives inside the response body. However the body ends — the client goes
//! away (hyper drops it), the timeout fires, the content ends, or the server shuts down — the
//! guard's `Drop` runs once, so the totals cannot drift.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use http::Version;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::conn::RequestInfo;
use crate::error::AppError;

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
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientGone => "client-gone",
            Self::Timeout => "timeout",
            Self::End => "end",
            Self::Shutdown => "shutdown",
            Self::Slow => "slow",
            Self::Replaced => "replaced",
            Self::Bye => "bye",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Open streams right now, by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenStreams {
    pub http1: usize,
    pub http2: usize,
}

impl OpenStreams {
    pub fn total(self) -> usize {
        self.http1 + self.http2
    }
}

/// A cheap handle to the registry; clone it freely.
#[derive(Debug, Clone)]
pub struct StreamRegistry {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    max_streams: usize,
    open_total: AtomicUsize,
    open_http1: AtomicUsize,
    open_http2: AtomicUsize,
    opened: AtomicU64,
    shutdown: CancellationToken,
}

/// Seconds a client refused for capacity is told to wait.
const RETRY_AFTER_FULL_SECS: u64 = 5;

impl StreamRegistry {
    pub fn new(max_streams: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                max_streams,
                open_total: AtomicUsize::new(0),
                open_http1: AtomicUsize::new(0),
                open_http2: AtomicUsize::new(0),
                opened: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Count a new stream in, or refuse it with 503 when the cap is reached.
    pub fn open(&self, request: &RequestInfo, path: &str) -> Result<StreamGuard, AppError> {
        let shared = &self.shared;
        if shared.shutdown.is_cancelled() {
            return Err(AppError::unavailable(
                "the server is shutting down",
                RETRY_AFTER_FULL_SECS,
            ));
        }
        let before = shared.open_total.fetch_add(1, Ordering::SeqCst);
        if before >= shared.max_streams {
            shared.open_total.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                listener = request.listener_name(),
                peer = %request.peer_text(),
                path,
                max_streams = shared.max_streams,
                "stream refused: --max-streams reached"
            );
            return Err(AppError::unavailable(
                format!(
                    "too many open streams (--max-streams {}); retry later",
                    shared.max_streams
                ),
                RETRY_AFTER_FULL_SECS,
            ));
        }
        self.protocol_counter(request.version)
            .fetch_add(1, Ordering::SeqCst);
        shared.opened.fetch_add(1, Ordering::Relaxed);
        let guard = StreamGuard {
            registry: self.clone(),
            request: request.clone(),
            path: path.to_string(),
            started: Instant::now(),
            reason: CloseReason::ClientGone,
        };
        let open = self.open_streams();
        tracing::info!(
            listener = request.listener_name(),
            protocol = request.protocol(),
            connection = request.connection_id,
            peer = %request.peer_text(),
            path,
            open_h1 = open.http1,
            open_h2 = open.http2,
            "stream opened"
        );
        Ok(guard)
    }

    pub fn open_streams(&self) -> OpenStreams {
        OpenStreams {
            http1: self.shared.open_http1.load(Ordering::SeqCst),
            http2: self.shared.open_http2.load(Ordering::SeqCst),
        }
    }

    /// Streams opened since start.
    pub fn opened_total(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// Ask every open stream to end (reason `shutdown`) and refuse new ones.
    pub fn shut_down(&self) {
        self.shared.shutdown.cancel();
    }

    fn protocol_counter(&self, version: Version) -> &AtomicUsize {
        if version == Version::HTTP_2 {
            &self.shared.open_http2
        } else {
            &self.shared.open_http1
        }
    }
}

/// One open stream. Dropping it counts the stream out and logs how it ended.
#[derive(Debug)]
pub struct StreamGuard {
    registry: StreamRegistry,
    request: RequestInfo,
    path: String,
    started: Instant,
    reason: CloseReason,
}

impl StreamGuard {
    /// Record why the stream is ending; the first reason set wins over the default only.
    pub fn set_reason(&mut self, reason: CloseReason) {
        if self.reason == CloseReason::ClientGone {
            self.reason = reason;
        }
    }

    /// Resolves when the server starts shutting down.
    pub fn shutdown(&self) -> WaitForCancellationFuture<'_> {
        self.registry.shared.shutdown.cancelled()
    }

    pub fn request(&self) -> &RequestInfo {
        &self.request
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let shared = &self.registry.shared;
        self.registry
            .protocol_counter(self.request.version)
            .fetch_sub(1, Ordering::SeqCst);
        shared.open_total.fetch_sub(1, Ordering::SeqCst);
        let open = self.registry.open_streams();
        tracing::info!(
            listener = self.request.listener_name(),
            protocol = self.request.protocol(),
            connection = self.request.connection_id,
            peer = %self.request.peer_text(),
            path = %self.path,
            reason = %self.reason,
            duration_ms = self.started.elapsed().as_millis() as u64,
            open_h1 = open.http1,
            open_h2 = open.http2,
            "stream closed"
        );
    }
}
