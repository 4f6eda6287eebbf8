//! The SSE wire format and the body that carries it.
//!
//! [`Frame`] encodes one event so that no field can be injected: data is split on every line
//! break (`\n`, `\r\n`, `\r`) into several `data:` lines, and event names are checked when
//! they are made. [`drive`] turns a content stream into a response body that also handles
//! keep-alive comments, the stream timeout and server shutdown, in one place for every
//! endpoint.

use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, sleep_until};

use crate::streams::{CloseReason, StreamGuard};

/// The comment sent on an idle stream so proxies and browsers keep it open.
pub const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// An event type name (`event:` field): non-empty, no line breaks, no colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(String);

impl EventName {
    pub fn new(name: impl Into<String>) -> Result<Self, &'static str> {
        let name = name.into();
        if name.is_empty() {
            return Err("an event name must not be empty");
        }
        if name.contains(['\r', '\n']) {
            return Err("an event name must not contain a line break");
        }
        if name.contains(':') {
            return Err("an event name must not contain a colon");
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SSE frame, built field by field and ended with a blank line by [`Frame::finish`].
#[derive(Debug, Default)]
pub struct Frame {
    buf: BytesMut,
}

impl Frame {
    pub fn new() -> Self {
        Self::default()
    }

    /// `retry: <ms>`: how long the browser waits before reconnecting.
    pub fn retry(mut self, millis: u64) -> Self {
        self.field("retry", &millis.to_string());
        self
    }

    /// `id: <n>`: what the browser sends back as `Last-Event-ID`.
    pub fn id(mut self, id: u64) -> Self {
        self.field("id", &id.to_string());
        self
    }

    pub fn event(mut self, name: &EventName) -> Self {
        self.field("event", name.as_str());
        self
    }

    /// `data:` lines, one per line of `data`, so a line break can never start a new field.
    pub fn data(mut self, data: &str) -> Self {
        for line in split_lines(data) {
            self.field("data", line);
        }
        self
    }

    /// A comment line (ignored by EventSource), split like data.
    pub fn comment(mut self, text: &str) -> Self {
        for line in split_lines(text) {
            self.field("", line);
        }
        self
    }

    pub fn finish(mut self) -> Bytes {
        self.buf.put_u8(b'\n');
        self.buf.freeze()
    }

    fn field(&mut self, name: &str, value: &str) {
        self.buf.reserve(name.len() + value.len() + 3);
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(value.as_bytes());
        self.buf.put_u8(b'\n');
    }
}

/// Split on `\r\n`, `\r` or `\n`, the three line endings the SSE spec recognises.
/// `"a\n"` gives `["a", ""]`, so a trailing break survives the round trip.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(current)
            }
            Some(at) => {
                let skip = if current[at..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[at + skip..]);
                Some(&current[..at])
            }
        }
    })
}

/// What a content stream yields: bytes to send, or a request to end with a reason.
#[derive(Debug)]
pub enum Out {
    Send(Bytes),
    Close(CloseReason),
}

/// How a stream is kept alive and when it must end regardless of its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifetime {
    pub keepalive: Option<Duration>,
    pub timeout: Option<Duration>,
}

/// Run `content` under `guard`: keep-alive comments when idle, end at the timeout or at
/// shutdown, and record the close reason. When the client goes away hyper drops this body,
/// and with it the guard, which then logs `client-gone`.
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
            break;
        }
    }
}

/// A 200 `text/event-stream` response with the headers every SSE answer carries.
pub fn response<S>(body: S) -> Response
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_split_on_every_line_ending() {
        let frame = Frame::new().id(7).data("a\nb\r\nc\rd").finish();
        assert_eq!(&frame[..], b"id: 7\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn trailing_break_is_kept_as_an_empty_data_line() {
        let frame = Frame::new().data("x\n").finish();
        assert_eq!(&frame[..], b"data: x\ndata: \n\n");
    }

    #[test]
    fn event_names_with_breaks_or_colons_are_rejected() {
        assert!(EventName::new("end").is_ok());
        assert!(EventName::new("a\nb").is_err());
        assert!(EventName::new("a:b").is_err());
        assert!(EventName::new("").is_err());
    }

    #[test]
    fn retry_and_comment_fields() {
        let frame = Frame::new().comment("hi").retry(5000).finish();
        assert_eq!(&frame[..], b": hi\nretry: 5000\n\n");
    }
}
