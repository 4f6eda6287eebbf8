//! The one stream driver every SSE endpoint uses: it turns a content stream into a response
//! body that also sends keep-alive comments, ends at the stream timeout, when the token it
//! was opened with stops being accepted, or at server shutdown (the last two after a last
//! frame telling the client when to come back), and records why the stream ended.
//!
//! The timeout and the token's expiry share one timer: whichever comes first is armed, with
//! the reason it stands for. The expiry is a deadline here, not a task per stream: a stream
//! with a token costs nothing more than one with a timeout.
//!
//! Written out as a state machine rather than a generator: it is allocated once per open
//! stream and polled once per event on every stream, so its size and the work of one poll
//! are what an idle stream costs and what a delivery costs (BENCHMARKS.md, issue 16).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep, sleep_until};

use super::frame::KEEPALIVE_COMMENT;
use super::{CloseReason, StreamGuard, StreamRetry};

/// What a content stream yields: bytes to send, or a request to end with a reason.
#[derive(Debug)]
pub enum Out {
    Send(Bytes),
    Close(CloseReason),
}

/// How a stream is kept alive, when it must end regardless of its content, and what it
/// says last when the server shuts down or its token expires.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub keepalive: Option<Duration>,
    pub timeout: Option<Duration>,
    /// When the token the stream was opened with stops being accepted; `None` when it
    /// needed none.
    pub token_expiry: Option<TokenExpiry>,
    /// The stream's `retry:` values: at shutdown, its `shutdown_frame` is sent last; at the
    /// token's expiry, its `token_expired_frame`.
    pub retry: StreamRetry,
}

/// When a stream's token stops being accepted, counted from when the stream opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry {
    /// The token's `exp`, for the last frame.
    pub exp: u64,
    /// Zero when it is refused already (a stream opened in the token's last instant): the
    /// stream then ends at once with its last frame, and the reconnect gets the 401.
    pub ends_in: Duration,
}

/// Why the stream's one end timer is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Timeout,
    TokenExpired { exp: u64 },
}

pin_project! {
    /// The end timer and what its firing means, boxed together (see [`Drive`]).
    struct Deadline {
        #[pin]
        timer: Sleep,
        ends: Ends,
    }
}

/// The earlier of the timeout and the token's expiry (the expiry on a tie: its last frame
/// tells the client more), from `now`. An expiry beyond what the clock can count is never.
fn first_deadline(now: Instant, lifetime: &Lifetime) -> Option<(Instant, Ends)> {
    let timeout = lifetime
        .timeout
        .and_then(|timeout| now.checked_add(timeout))
        .map(|at| (at, Ends::Timeout));
    let expiry = lifetime.token_expiry.and_then(|expiry| {
        let at = now.checked_add(expiry.ends_in)?;
        Some((at, Ends::TokenExpired { exp: expiry.exp }))
    });
    match (timeout, expiry) {
        (Some(timeout), Some(expiry)) if timeout.0 < expiry.0 => Some(timeout),
        (timeout, expiry) => expiry.or(timeout),
    }
}

/// Run `content` under `guard`: keep-alive comments when idle, end at the timeout or at
/// shutdown (after the shutdown frame, when there is one), and record the close reason.
/// When the client goes away hyper drops this body, and with it the guard, which then logs
/// `client-gone`.
pub fn drive<S>(content: S, guard: StreamGuard, lifetime: Lifetime) -> Drive<S>
where
    S: Stream<Item = Out> + Send + 'static,
{
    let now = Instant::now();
    Drive {
        ending: guard.ending().notified(),
        ending_waker: None,
        content,
        guard,
        deadline: first_deadline(now, &lifetime).map(|(at, ends)| {
            Box::pin(Deadline {
                timer: sleep_until(at),
                ends,
            })
        }),
        keepalive: lifetime.keepalive.map(|period| KeepAlive {
            period,
            last_sent: now,
            timer: Box::pin(sleep_until(now + period)),
        }),
        retry: lifetime.retry,
        done: false,
    }
}

pin_project! {
    /// The body of one SSE stream: see [`drive`].
    #[must_use = "a stream does nothing unless polled"]
    pub struct Drive<S> {
        #[pin]
        content: S,
        guard: StreamGuard,
        // Server shutdown: registered with the task that polls this body, and registered
        // again only when another task polls it; in between, `Ending::started` is read.
        #[pin]
        ending: OwnedNotified,
        ending_waker: Option<Waker>,
        // Boxed: a stream without a timeout, token or keep-alive (the benchmarks' idle
        // streams) does not carry the space of a timer.
        deadline: Option<Pin<Box<Deadline>>>,
        keepalive: Option<KeepAlive>,
        retry: StreamRetry,
        done: bool,
    }
}

/// What one poll of the body gives hyper.
type Polled = Poll<Option<Result<Bytes, Infallible>>>;

/// Keep-alive: the idle period, when the stream last sent anything, and the timer (not
/// moved on every event; when it fires, a stream that sent something recently just waits for
/// the rest of its idle period).
#[derive(Debug)]
struct KeepAlive {
    period: Duration,
    last_sent: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> Drive<S> {
    /// Whether the server started shutting down, registering this task to be woken when it
    /// does (only if it is not the task registered already).
    fn ending(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        if this.guard.ending().started() {
            return true;
        }
        if this
            .ending_waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return false;
        }
        *this.ending_waker = Some(cx.waker().clone());
        this.ending.poll(cx).is_ready()
    }

    /// Record `bytes` as sent now and hand them out.
    fn send(self: Pin<&mut Self>, bytes: Bytes, event: bool) -> Polled {
        let this = self.project();
        if let Some(keepalive) = this.keepalive {
            keepalive.last_sent = Instant::now();
        }
        this.guard.record_sent(bytes.len(), event);
        Poll::Ready(Some(Ok(bytes)))
    }

    /// End with `reason`: the shutdown frame last when shutting down, then nothing.
    fn close(self: Pin<&mut Self>, reason: CloseReason) -> Polled {
        self.close_with(reason, None)
    }

    /// End because the deadline came: the timeout ends in silence, an expired token with its
    /// last frame.
    fn end(self: Pin<&mut Self>, ends: Ends) -> Polled {
        match ends {
            Ends::Timeout => self.close(CloseReason::Timeout),
            Ends::TokenExpired { exp } => {
                let frame = self.retry.token_expired_frame(exp);
                self.close_with(CloseReason::TokenExpired, Some(frame))
            }
        }
    }

    /// End with `reason`, sending `last` (or, at shutdown, the shutdown frame) first.
    fn close_with(self: Pin<&mut Self>, reason: CloseReason, last: Option<Bytes>) -> Polled {
        let this = self.project();
        *this.done = true;
        this.guard.set_reason(reason);
        // Sent as shutdown starts, before the listeners start their grace period: the frame
        // is written before any connection is cut.
        if reason == CloseReason::Shutdown
            && let Some(frame) = this.retry.shutdown_frame()
        {
            this.guard.record_sent(frame.len(), true);
            this.guard.set_shutdown_retry(this.retry.shutdown_ms);
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(frame) = last {
            this.guard.record_sent(frame.len(), true);
            return Poll::Ready(Some(Ok(frame)));
        }
        Poll::Ready(None)
    }
}

impl<S> Stream for Drive<S>
where
    S: Stream<Item = Out>,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        if self.done {
            return Poll::Ready(None);
        }
        // In this order: shutdown, deadline (timeout or token expiry), content, keep-alive.
        if self.as_mut().ending(cx) {
            return self.close(CloseReason::Shutdown);
        }
        if let Some(deadline) = self.as_mut().project().deadline {
            let deadline = deadline.as_mut().project();
            if deadline.timer.poll(cx).is_ready() {
                let ends = *deadline.ends;
                return self.end(ends);
            }
        }
        match self.as_mut().project().content.poll_next(cx) {
            Poll::Ready(Some(Out::Send(bytes))) => return self.send(bytes, true),
            Poll::Ready(Some(Out::Close(reason))) => return self.close(reason),
            Poll::Ready(None) => return self.close(CloseReason::End),
            Poll::Pending => {}
        }
        let Some(keepalive) = self.as_mut().project().keepalive else {
            return Poll::Pending;
        };
        loop {
            ready!(keepalive.timer.as_mut().poll(cx));
            let now = Instant::now();
            let due = keepalive.last_sent + keepalive.period;
            if now >= due {
                keepalive.timer.as_mut().reset(now + keepalive.period);
                return self.send(Bytes::from_static(KEEPALIVE_COMMENT), false);
            }
            keepalive.timer.as_mut().reset(due);
        }
    }
}

/// `0` means "never" for every seconds-valued knob here.
pub fn nonzero_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use futures_util::StreamExt;
    use http::Version;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::UnboundedReceiverStream;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::sse::StreamRegistry;
    use crate::sse::streams::test_request;

    const PERIOD: Duration = Duration::from_secs(15);

    type Body = Pin<Box<Drive<UnboundedReceiverStream<Out>>>>;

    /// A body over a content stream fed by the returned sender, and its registry.
    fn body(
        keepalive: Option<Duration>,
        timeout: Option<Duration>,
        retry: StreamRetry,
    ) -> (mpsc::UnboundedSender<Out>, StreamRegistry, Body) {
        body_with(Lifetime {
            keepalive,
            timeout,
            token_expiry: None,
            retry,
        })
    }

    fn body_with(lifetime: Lifetime) -> (mpsc::UnboundedSender<Out>, StreamRegistry, Body) {
        let registry = StreamRegistry::new(10, CancellationToken::new());
        let request = test_request(1, Version::HTTP_2);
        let guard = registry.open(&request, "/test", false).expect("room");
        let (send, receive) = mpsc::unbounded_channel();
        let drive = drive(UnboundedReceiverStream::new(receive), guard, lifetime);
        (send, registry, Box::pin(drive))
    }

    fn bytes(polled: Option<Result<Bytes, Infallible>>) -> Bytes {
        polled.expect("a frame").expect("infallible")
    }

    fn reasons(registry: &StreamRegistry) -> Vec<(&'static str, u64)> {
        let stats = registry.stats();
        let reasons = stats.close_reasons.into_iter().filter(|(_, n)| *n > 0);
        reasons.collect()
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_comes_one_idle_period_after_the_last_frame() {
        let (send, _registry, mut body) = body(Some(PERIOD), None, StreamRetry::exact(1000));
        let start = Instant::now();
        assert_eq!(bytes(body.next().await), KEEPALIVE_COMMENT);
        assert_eq!(start.elapsed(), PERIOD);

        tokio::time::sleep(Duration::from_secs(5)).await;
        let frame = Bytes::from_static(b"data: x\n\n");
        send.send(Out::Send(frame)).expect("the body is open");
        assert_eq!(bytes(body.next().await), &b"data: x\n\n"[..]);
        // The timer was armed for 30 s; it then waits out the rest of 20 + 15 s.
        assert_eq!(bytes(body.next().await), KEEPALIVE_COMMENT);
        assert_eq!(start.elapsed(), Duration::from_secs(35));
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_ends_the_stream_without_a_frame() {
        let (_send, registry, mut body) = body(None, Some(PERIOD), StreamRetry::exact(1000));
        let start = Instant::now();
        assert!(body.next().await.is_none());
        assert_eq!(start.elapsed(), PERIOD);
        assert!(body.next().await.is_none(), "stays ended");
        drop(body);
        assert_eq!(reasons(&registry), [("timeout", 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_earlier_of_timeout_and_token_expiry_ends_the_stream_with_its_reason() {
        let retry = StreamRetry::exact(1500);
        let expiring = |ends_in: Duration| Lifetime {
            keepalive: None,
            timeout: Some(PERIOD),
            token_expiry: Some(TokenExpiry { exp: 77, ends_in }),
            retry,
        };
        // The token first: its last frame, with the stream's retry and no id, then the end.
        let (_send, registry, mut body) = body_with(expiring(Duration::from_secs(4)));
        let start = Instant::now();
        assert_eq!(
            bytes(body.next().await),
            &b"retry: 1500\nevent: token-expired\ndata: {\"exp\":77,\"retry_ms\":1500}\n\n"[..]
        );
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert!(body.next().await.is_none());
        drop(body);
        assert_eq!(reasons(&registry), [("token-expired", 1)]);

        // The timeout first: it ends in silence, as without a token.
        let (_send, registry, mut body) = body_with(expiring(PERIOD * 2));
        assert!(body.next().await.is_none());
        assert_eq!(start.elapsed(), Duration::from_secs(4) + PERIOD);
        drop(body);
        assert_eq!(reasons(&registry), [("timeout", 1)]);

        // Refused already when it opens: the last frame at once, before any content.
        let (send, registry, mut body) = body_with(expiring(Duration::ZERO));
        send.send(Out::Send(Bytes::from_static(b"data: x\n\n")))
            .expect("the body is open");
        assert_eq!(bytes(body.next().await), retry.token_expired_frame(77));
        assert!(body.next().await.is_none());
        drop(body);
        assert_eq!(reasons(&registry), [("token-expired", 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_timeout_or_keep_alive_an_idle_stream_stays_open_and_silent() {
        let (_send, registry, mut body) = body(None, None, StreamRetry::exact(1000));
        let a_day = Duration::from_secs(24 * 3600);
        assert!(
            tokio::time::timeout(a_day, body.next()).await.is_err(),
            "no frame and no end"
        );
        assert_eq!(registry.open_streams().total(), 1);
    }

    #[tokio::test]
    async fn content_ends_the_stream_with_its_reason() {
        let (send, registry, mut body) = body(None, None, StreamRetry::exact(1000));
        send.send(Out::Close(CloseReason::Bye))
            .expect("the body is open");
        assert!(body.next().await.is_none());
        drop(body);
        assert_eq!(reasons(&registry), [("bye", 1)]);
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn shutdown_wakes_the_task_that_polled_last_and_sends_the_shutdown_frame() {
        let retry = StreamRetry {
            first_ms: 1000,
            shutdown_ms: Some(3000),
        };
        let (_send, registry, mut body) = body(None, None, retry);
        let (first, second) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
        for counter in [&first, &second] {
            let waker = Waker::from(Arc::clone(counter));
            let polled = body.as_mut().poll_next(&mut Context::from_waker(&waker));
            assert!(polled.is_pending());
        }
        registry.shut_down();
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the task polling now is woken"
        );
        assert_eq!(
            bytes(body.next().await),
            retry.shutdown_frame().expect("a spread")
        );
        assert!(body.next().await.is_none());
        drop(body);
        assert_eq!(reasons(&registry), [("shutdown", 1)]);
    }

    #[tokio::test]
    async fn a_stream_opened_after_shutdown_started_ends_at_once() {
        let (_send, registry, mut body) = body(None, None, StreamRetry::exact(1000));
        registry.shut_down();
        assert!(
            body.next().await.is_none(),
            "no shutdown frame without a spread"
        );
    }
}
