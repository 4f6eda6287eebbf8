//! A spec-conformant, incremental SSE parser (the WHATWG "event stream interpretation").
//!
//! sselab's own clients — the tests, the load generator, the encoder's round-trip proof —
//! read streams with this, so they see events exactly as a browser's EventSource would.
//! It does not reconnect or track time; that is the caller's business.

/// One dispatched event, as EventSource would hand it to `onmessage`/`addEventListener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// The event type; `message` when the stream gave none.
    pub event: String,
    pub data: String,
    /// The last event id at dispatch (what a reconnect sends as `Last-Event-ID`).
    pub id: String,
    /// The reconnection time last set by a `retry:` field, if any.
    pub retry: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next one belongs to it.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: String,
    retry: Option<u64>,
    comments: u64,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Comment lines seen so far (keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// The reconnection time as the last `retry:` field set it, whether or not an event was
    /// dispatched after it (a browser applies it at once).
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The current `Last-Event-ID` value.
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// Feed bytes; every event completed by them is returned in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<ParsedEvent> {
        let mut out = Vec::new();
        if !self.started && !bytes.is_empty() {
            // A UTF-8 byte order mark at the very start is ignored.
            if self.line.is_empty() && bytes.starts_with(b"\xEF\xBB\xBF") {
                bytes = &bytes[3..];
            }
            self.started = true;
        }
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => self.line.push(byte),
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<ParsedEvent>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (name, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        match name {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<ParsedEvent>) {
        let event = std::mem::take(&mut self.event);
        let mut data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        data.pop(); // the trailing line feed
        out.push(ParsedEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
            retry: self.retry,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_examples() {
        let mut parser = Parser::new();
        let events = parser.feed(
            b"data: YHOO\ndata: +2\ndata: 10\n\n: comment\nevent: add\ndata:73857293\nid: 7\n\n",
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data, "YHOO\n+2\n10");
        assert_eq!(events[0].event, "message");
        assert_eq!(events[1].event, "add");
        assert_eq!(events[1].data, "73857293");
        assert_eq!(events[1].id, "7");
        assert_eq!(parser.comments(), 1);
    }

    #[test]
    fn line_endings_may_split_across_chunks() {
        let mut parser = Parser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert!(parser.feed(b"\n\r").len() == 1);
        // The `\n` after the `\r` above is part of the same blank line, not another one.
        assert!(parser.feed(b"\ndata: b\r\r").len() == 1);
    }

    #[test]
    fn retry_needs_digits_and_events_without_data_do_not_dispatch() {
        let mut parser = Parser::new();
        assert!(parser.feed(b"retry: 1500\nid: 3\n\n").is_empty());
        assert_eq!(parser.last_event_id(), "3");
        let events = parser.feed(b"retry: x\ndata\n\n");
        assert_eq!(events[0].retry, Some(1500));
        assert!(parser.feed(b"retry: 2500\n\n").is_empty());
        assert_eq!(parser.retry(), Some(2500), "applied without an event");
        assert_eq!(events[0].data, "");
        assert_eq!(events[0].id, "3");
    }
}
