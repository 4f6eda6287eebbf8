//! The one stream driver every SSE endpoint uses: it turns a content stream into a response
//! body that also sends keep-alive comments, ends at the stream timeout or at server
//! shutdown (after a last frame telling the client when to come back), and records why the
//! stream ended.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, sleep_until};

use super::frame::KEEPALIVE_COMMENT;
use super::{CloseReason, StreamGuard, StreamRetry};

/// What a content stream yields: bytes to send, or a request to end with a reason.
#[derive(Debug)]
pub enum Out {
    Send(Bytes),
    Close(CloseReason),
}

/// How a stream is kept alive, when it must end regardless of its content, and what it
/// says last when the server shuts down.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub keepalive: Option<Duration>,
    pub timeout: Option<Duration>,
    /// The stream's `retry:` values: at shutdown, its `shutdown_frame` is sent last.
    pub retry: StreamRetry,
}

/// Run `content` under `guard`: keep-alive comments when idle, end at the timeout or at
/// shutdown (after the shutdown frame, when there is one), and record the close reason.
/// When the client goes away hyper drops this body, and with it the guard, which then logs
/// `client-gone`.
pub fn drive<S>(
    content: S,
    guard: StreamGuard,
    lifetime: Lifetime,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Out> + Send + 'static,
{
    async_stream::stream! {
        let mut guard = guard;
        let mut content = std::pin::pin!(content);
        // Every future below is made once and polled across events: re-creating them per
        // event would register and unregister with the timer wheel and with the server-wide
        // shutdown token each time, and at 100k deliveries a second that contention shows.
        let shutdown = guard.shutdown_token().cancelled_owned();
        let mut shutdown = std::pin::pin!(shutdown);
        let far_future = Duration::from_secs(86_400 * 365);
        let timeout = sleep_until(Instant::now() + lifetime.timeout.unwrap_or(far_future));
        let mut timeout = std::pin::pin!(timeout);
        let idle_period = lifetime.keepalive.unwrap_or(far_future);
        let mut last_sent = Instant::now();
        let idle = sleep_until(last_sent + idle_period);
        let mut idle = std::pin::pin!(idle);
        loop {
            let reason = tokio::select! {
                biased;
                _ = &mut shutdown => CloseReason::Shutdown,
                _ = &mut timeout, if lifetime.timeout.is_some() => CloseReason::Timeout,
                item = content.next() => match item {
                    Some(Out::Send(bytes)) => {
                        last_sent = Instant::now();
                        guard.record_sent(bytes.len(), true);
                        yield Ok(bytes);
                        continue;
                    }
                    Some(Out::Close(reason)) => reason,
                    None => CloseReason::End,
                },
                _ = &mut idle, if lifetime.keepalive.is_some() => {
                    // The timer is not moved on every event; when it fires, a stream that
                    // sent something recently just waits for the rest of its idle period.
                    let now = Instant::now();
                    if now >= last_sent + idle_period {
                        last_sent = now;
                        guard.record_sent(KEEPALIVE_COMMENT.len(), false);
                        yield Ok(Bytes::from_static(KEEPALIVE_COMMENT));
                    }
                    idle.as_mut().reset(last_sent + idle_period);
                    continue;
                }
            };
            guard.set_reason(reason);
            // Sent as the token is cancelled, before the listeners start their grace period:
            // the frame is written before any connection is cut.
            if reason == CloseReason::Shutdown
                && let Some(frame) = lifetime.retry.shutdown_frame()
            {
                guard.record_sent(frame.len(), true);
                guard.set_shutdown_retry(lifetime.retry.shutdown_ms);
                yield Ok(frame);
            }
            break;
        }
    }
}

/// `0` means "never" for every seconds-valued knob here.
pub fn nonzero_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}
