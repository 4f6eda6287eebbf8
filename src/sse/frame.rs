//! The SSE wire encoder: [`Frame`] encodes one event so that no field can be injected. Data
//! is split on every line break (`\n`, `\r\n`, `\r`) into several `data:` lines, and event
//! names are checked when they are made.

use std::borrow::Cow;
use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The comment sent on an idle stream so proxies and browsers keep it open.
pub const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// An event type name (`event:` field): non-empty, no line breaks, no colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(Cow<'static, str>);

impl EventName {
    pub fn new(name: impl Into<String>) -> Result<Self, &'static str> {
        let name = name.into();
        match check(name.as_bytes()) {
            Ok(()) => Ok(Self(Cow::Owned(name))),
            Err(reason) => Err(reason),
        }
    }

    /// A name known when the code is written; checked at compile time when used in a
    /// `const`, so the names sselab sends itself cannot fail at run time.
    pub const fn from_static(name: &'static str) -> Self {
        if let Err(reason) = check(name.as_bytes()) {
            panic!("{}", reason);
        }
        Self(Cow::Borrowed(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a name cannot be an `event:` value, if it cannot.
const fn check(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("an event name must not be empty");
    }
    let mut at = 0;
    while at < name.len() {
        match name[at] {
            b'\r' | b'\n' => return Err("an event name must not contain a line break"),
            b':' => return Err("an event name must not contain a colon"),
            _ => at += 1,
        }
    }
    Ok(())
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

    /// `id: <text>`, for an id that is not a number (the cursor of a stream of many topics).
    /// Line breaks and NUL are left out: a line break would start a field, and a browser
    /// ignores an id that holds a NUL.
    pub fn id_text(mut self, id: &str) -> Self {
        if id.contains(['\r', '\n', '\0']) {
            let kept: String = id
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
                .collect();
            self.field("id", &kept);
        } else {
            self.field("id", id);
        }
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

/// The event names sselab itself sends, in one place.
pub mod names {
    use super::EventName;

    /// The first event of every stream: how it is served.
    pub const CONNECTED: EventName = EventName::from_static("connected");
    /// The replay ring no longer holds what a client asked for.
    pub const RESET: EventName = EventName::from_static("reset");
    /// Another connection subscribed with the same session id.
    pub const REPLACED: EventName = EventName::from_static("replaced");
    /// The session was deleted by the server.
    pub const BYE: EventName = EventName::from_static("bye");
    /// The demo clock reached its whole minute.
    pub const END: EventName = EventName::from_static("end");
    /// The dashboard's once-a-second counters.
    pub const STATS: EventName = EventName::from_static("stats");
    /// An order moved on a step.
    pub const PROGRESS: EventName = EventName::from_static("progress");
    /// An order finished well.
    pub const DONE: EventName = EventName::from_static("done");
    /// An order failed or expired.
    pub const FAILED: EventName = EventName::from_static("failed");
    /// The server is shutting down: the stream's last frame, with the `retry:` to wait.
    pub const SHUTDOWN: EventName = EventName::from_static("shutdown");
    /// A refusal a later try can pass, as a stream: the only event of its answer, after the
    /// `retry:` to wait (see [`crate::sse::refusal_frame`]).
    pub const REFUSED: EventName = EventName::from_static("refused");
    /// The stream's token stopped being accepted: its last frame, with the `retry:` to wait
    /// (a page that refreshed its token meanwhile continues; one that did not gets 401).
    pub const TOKEN_EXPIRED: EventName = EventName::from_static("token-expired");
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
        assert_eq!(names::CONNECTED.as_str(), "connected");
    }

    #[test]
    fn a_text_id_cannot_start_a_field() {
        let frame = Frame::new().id_text("AQ-_x\nevent: evil\r\0").finish();
        assert_eq!(&frame[..], b"id: AQ-_xevent: evil\n\n");
    }

    #[test]
    fn retry_and_comment_fields() {
        let frame = Frame::new().comment("hi").retry(5000).finish();
        assert_eq!(&frame[..], b": hi\nretry: 5000\n\n");
    }
}
