//! How a connection over a cap is answered, and the count of each answer.
//!
//! Why the plain listener reads the request before it says no: a browser's `EventSource`
//! treats a `503` as final, and what else it retries differs by engine (measured in headless
//! Chromium and Firefox ESR, README "What a browser sees when the connection caps say no"):
//! both come back from a `200 text/event-stream` whose one frame says `retry:`, only Chromium
//! from a connection closed without an answer. So a refused plain connection gets up to
//! [`HEAD_WAIT`] to send up to [`HEAD_BYTES`] of its request head, and then:
//! - a request whose `Accept` has `text/event-stream` (every EventSource's) gets that stream:
//!   `retry:` (the `Retry-After` of [`REFUSED_RETRY_AFTER_SECS`], spread by `--retry-jitter`),
//!   one `event: refused` naming the cap, no `id:` (the browser's `Last-Event-ID` stays what
//!   it was), and the end — unless the server gives everyone the `503`
//!   ([`RefusalConfig::event_streams`] off);
//! - any other request gets the canned `503` + `Retry-After` naming the flag (curl, fetch);
//! - a connection that sends nothing in time (or HTTP/2 with prior knowledge, which an
//!   HTTP/1.1 answer would not help) is closed.
//!
//! Both answers carry the CORS headers the routes would (`--cors-origin`): a cross-origin
//! EventSource reads an answer without them as a CORS failure, which is final too.
//!
//! At most [`READING_AT_ONCE`] refused connections are read at a time, so a flood past the
//! cap costs a bounded number of sockets and buffers; beyond that a refused connection is
//! closed at once. TLS connections are closed before the handshake the cap is there to
//! save: Chromium retries that, Firefox does not (README). These bytes are written here, below
//! the HTTP layer, by hand: the connection never reaches hyper or a route.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::ListenerKind;
use super::admission::{ConnLimits, Refusal};
use super::origins::AllowedOrigins;

/// Seconds a refused client is told to wait, as the HTTP layer's own 503s say.
pub const REFUSED_RETRY_AFTER_SECS: u64 = 5;

/// How long a refused plain connection has to send its request head. A browser sends it
/// with the connection (measured: within milliseconds); a slow network needs a round trip.
pub const HEAD_WAIT: Duration = Duration::from_secs(1);

/// The most of a request head read to choose the answer (the `Accept` line comes early).
pub const HEAD_BYTES: usize = 4096;

/// Refused plain connections read at once; part of the process's spare files
/// ([`super::admission::SPARE_FILES`]), since each is open past `--max-connections`.
pub const READING_AT_ONCE: usize = 32;

/// Reads of 4 KiB after the answer, so closing sends FIN and not RST (an RST could reach
/// the client before it read the answer). Bounded: a client that keeps sending gets its RST.
const DISCARD_READS: usize = 4;

/// The event name of a refusal stream: the SSE layer's `names::REFUSED` (this layer cannot
/// import it).
const REFUSED_EVENT: &str = "refused";

/// How a refused connection was answered: the `answer` label in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnAnswer {
    /// `200 text/event-stream` with `retry:` and `event: refused`.
    Stream,
    /// `503` + `Retry-After`.
    Status,
    /// Closed without an answer: TLS before the handshake, QUIC with CONNECTION_REFUSED, a
    /// plain connection that sent no request in time or came past [`READING_AT_ONCE`].
    Closed,
}

impl ConnAnswer {
    pub const ALL: [ConnAnswer; 3] = [Self::Stream, Self::Status, Self::Closed];

    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Status => "status",
            Self::Closed => "closed",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Stream => 0,
            Self::Status => 1,
            Self::Closed => 2,
        }
    }
}

/// How the listeners answer a connection over a cap, from the flags.
#[derive(Debug, Clone)]
pub struct RefusalConfig {
    /// Answer an EventSource with a refusal stream; `false` gives everyone the `503`.
    pub event_streams: bool,
    /// `--retry-jitter`: a refusal stream's `retry:` is drawn from
    /// `[Retry-After, Retry-After × (1 + jitter)]`, so refused clients do not return together.
    pub retry_jitter: f64,
    /// `--cors-origin`.
    pub origins: AllowedOrigins,
}

/// Answers refused connections and counts the answers.
#[derive(Debug)]
pub struct Refusals {
    config: RefusalConfig,
    /// One permit per refused plain connection being read.
    reading: Arc<Semaphore>,
    /// Per listener (in [`ListenerKind::ALL`] order), per [`Refusal`], per [`ConnAnswer`].
    answered: [[[AtomicU64; 3]; 2]; ListenerKind::COUNT],
}

impl Refusals {
    /// Reading at most `reading_at_once` refused plain connections at a time.
    pub fn new(config: RefusalConfig, reading_at_once: usize) -> Self {
        Self {
            config,
            reading: Arc::new(Semaphore::new(reading_at_once)),
            answered: Default::default(),
        }
    }

    /// Answer and close a refused connection (see the module doc); a plain one is answered
    /// on a task of its own, so the accept loop never waits for it.
    pub fn turn_away(
        self: &Arc<Self>,
        stream: TcpStream,
        listener: ListenerKind,
        refusal: Refusal,
        limits: ConnLimits,
    ) {
        let permit = match listener {
            ListenerKind::Http => self.reading.clone().try_acquire_owned().ok(),
            _ => None,
        };
        let Some(permit) = permit else {
            self.count(listener, refusal, ConnAnswer::Closed);
            drop(stream);
            return;
        };
        let refusals = self.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let answer = refusals.answer(&mut stream, refusal, limits).await;
            // Counted before the close, so a client that saw the close sees the count.
            refusals.count(listener, refusal, answer);
            close(stream).await;
            drop(permit);
        });
    }

    /// Read the request head and write the answer it calls for.
    async fn answer(
        &self,
        stream: &mut TcpStream,
        refusal: Refusal,
        limits: ConnLimits,
    ) -> ConnAnswer {
        let head = read_head(stream).await;
        let answer = answer_for(&head, self.config.event_streams);
        let origin = header_values(&head, "origin").next();
        let cors = self.config.origins.header_lines(origin);
        let message = message(refusal, limits);
        let response = match answer {
            ConnAnswer::Closed => return answer,
            ConnAnswer::Status => status_response(&message, &cors),
            ConnAnswer::Stream => {
                let retry_ms = retry_ms(self.config.retry_jitter, &mut fastrand::Rng::new());
                stream_response(refusal, &message, retry_ms, &cors)
            }
        };
        let _ = tokio::time::timeout(HEAD_WAIT, stream.write_all(response.as_bytes())).await;
        answer
    }

    /// Count a refusal answered `answer` (the HTTP/3 listener's CONNECTION_REFUSED is
    /// [`ConnAnswer::Closed`]).
    pub fn count(&self, listener: ListenerKind, refusal: Refusal, answer: ConnAnswer) {
        self.answered[listener.index()][refusal.index()][answer.index()]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far, per listener, cap and answer (each counted once answered).
    pub fn answered(&self) -> Vec<(ListenerKind, Refusal, ConnAnswer, u64)> {
        let mut all = Vec::new();
        for listener in ListenerKind::ALL {
            for refusal in Refusal::ALL {
                for answer in ConnAnswer::ALL {
                    let n = self.answered[listener.index()][refusal.index()][answer.index()]
                        .load(Ordering::Relaxed);
                    all.push((listener, refusal, answer, n));
                }
            }
        }
        all
    }
}

/// What the client sends first: up to [`HEAD_BYTES`], until the blank line that ends the
/// head, its end of stream, or [`HEAD_WAIT`].
async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    let mut head = vec![0; HEAD_BYTES];
    let mut got = 0;
    while got < HEAD_BYTES && !ends_head(&head[..got]) {
        match tokio::time::timeout_at(deadline, stream.read(&mut head[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
    }
    head.truncate(got);
    head
}

fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n")
}

/// The answer for what arrived: nothing (or HTTP/2's preface) is closed; an event-stream
/// `Accept` gets the stream when `event_streams`; anything else the status.
fn answer_for(head: &[u8], event_streams: bool) -> ConnAnswer {
    if head.is_empty() || head.starts_with(b"PRI ") {
        ConnAnswer::Closed
    } else if event_streams && wants_event_stream(head) {
        ConnAnswer::Stream
    } else {
        ConnAnswer::Status
    }
}

/// `text/event-stream` among the media ranges of the head's `Accept` fields, as every
/// EventSource sends (the HTTP layer reads a parsed request the same way).
fn wants_event_stream(head: &[u8]) -> bool {
    header_values(head, "accept")
        .flat_map(|value| value.split(|b| *b == b','))
        .any(|range| {
            let media = range.split(|b| *b == b';').next().unwrap_or_default();
            media
                .trim_ascii()
                .eq_ignore_ascii_case(b"text/event-stream")
        })
}

/// The values of the header `name` in the whole lines of `head` (a line cut off by
/// [`HEAD_BYTES`] or the deadline is not read).
fn header_values<'a>(head: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let whole_lines = head
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(&head[..0], |last| &head[..last]);
    whole_lines
        .split(|b| *b == b'\n')
        .skip(1) // the request line
        .filter_map(move |line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|b| *b == b':')?;
            let (field, value) = line.split_at(colon);
            field
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| value[1..].trim_ascii())
        })
}

/// The one line saying which cap, and which flag.
fn message(refusal: Refusal, limits: ConnLimits) -> String {
    match refusal {
        Refusal::MaxConnections => format!(
            "too many connections: this server holds at most {} (--max-connections); try again later",
            limits.max_connections
        ),
        Refusal::MaxConnectionsPerIp => format!(
            "too many connections from your address: at most {} (--max-connections-per-ip); try again later",
            limits.max_connections_per_ip
        ),
    }
}

/// A refusal stream's `retry:`: the `Retry-After` in ms, spread by `jitter`.
fn retry_ms(jitter: f64, rng: &mut fastrand::Rng) -> u64 {
    let shortest = REFUSED_RETRY_AFTER_SECS * 1000;
    let jitter = if jitter.is_finite() {
        jitter.max(0.0)
    } else {
        0.0
    };
    let longest = (shortest as f64 * (1.0 + jitter)).round() as u64;
    rng.u64(shortest..=longest.max(shortest))
}

/// The canned `503`: the message as a one-line body, `Retry-After`, and the close.
fn status_response(message: &str, cors: &str) -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: {REFUSED_RETRY_AFTER_SECS}\r\n{cors}connection: close\r\n\
         content-length: {}\r\n\r\n{message}\n",
        message.len() + 1
    )
}

/// The refusal stream: `200 text/event-stream` whose whole body is one frame, `retry:` and
/// `event: refused` with `{"status":503,"reason":…,"message":…,"retry_ms":…}`, no `id:`.
fn stream_response(refusal: Refusal, message: &str, retry_ms: u64, cors: &str) -> String {
    let data = json!({
        "status": 503,
        "reason": refusal.name(),
        "message": message,
        "retry_ms": retry_ms,
    });
    let body = format!("retry: {retry_ms}\nevent: {REFUSED_EVENT}\ndata: {data}\n\n");
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\
         x-sselab-refused: {}\r\n{cors}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        refusal.name(),
        body.len()
    )
}

/// Read and drop what else arrived (bounded), then send FIN.
async fn close(mut stream: TcpStream) {
    let mut discard = [0u8; 4096];
    for _ in 0..DISCARD_READS {
        if !matches!(stream.try_read(&mut discard), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests;
