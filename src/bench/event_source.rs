//! The client the reconnecting modes (`reconnect`, `storm`) share: it asks for a stream the
//! way a browser's EventSource does (`Accept: text/event-stream`, `Cache-Control: no-cache`,
//! `Last-Event-ID` once it has one) and sorts the answer as the browser's rules do — a stream
//! it reads until it ends and then reconnects from after `retry:` (a refusal stream is one of
//! those, told apart by its header); no server (refused, reset, timed out), which it also
//! retries; or anything else, which ends it for good.
//!
//! [`Running::start`] starts one task per client over `--ramp` and stops them on demand;
//! what each client does between attempts — how long to wait, what to record — is each
//! mode's.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::{Plan, StreamArgs};
use super::request::refused;
use crate::client::{Conn, Proto, ResponseBody, Target};
use crate::sse::parser::{ParsedEvent, Parser};

/// The reconnection time of a stream that never sent `retry:`: Chromium's
/// `EventSource::kDefaultReconnectDelay` (Firefox uses 5000).
pub(super) const BROWSER_DEFAULT_RETRY_MS: u64 = 3000;
/// Clients stop at once when told to; this is for a machine too busy to schedule them.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// A retry after an attempt that gave no stream (no server, or a refusal stream) waits at
/// least this long, so a `retry: 0` does not spin against a closed port or a full server.
pub(super) const MIN_REATTEMPT: Duration = Duration::from_millis(100);

/// An answered stream: open, or a refusal stream (which ends after its one event).
pub(super) struct Opened {
    pub body: ResponseBody,
    /// The reason a refusal stream named (`x-sselab-refused`); `None` for a stream.
    pub refused: Option<String>,
    /// Held while the body is read, as hyper may close a connection nobody can send on.
    _conn: Conn,
}

/// Why an attempt to open a stream did not give one.
pub(super) enum Attempt {
    /// No server answered (refused, reset, timed out): a browser tries again after `retry:`.
    NoServer(String),
    /// A server answered with something other than a 200 event stream: a browser gives up.
    Final(String),
}

impl Attempt {
    pub fn reason(&self) -> &str {
        match self {
            Attempt::NoServer(reason) | Attempt::Final(reason) => reason,
        }
    }
}

/// Read until the server ends the stream (true) or `stop` (false), feeding `parser`; the
/// events it completed are handed to `seen`.
pub(super) async fn read_to_end(
    opened: &mut Opened,
    parser: &mut Parser,
    stop: &CancellationToken,
    mut seen: impl FnMut(ParsedEvent),
) -> bool {
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return false,
            frame = opened.body.frame() => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    parser.feed(&data).into_iter().for_each(&mut seen);
                }
            }
            // A clean end, a reset or a closed connection: the stream is over either way.
            Some(Err(_)) | None => return true,
        }
    }
}

/// The clients of a run, one task each, until [`Self::stop`].
pub(super) struct Running {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    /// When the first client started.
    pub started: Instant,
}

impl Running {
    /// One task per stream of `--streams`, the `i`th of `n` started `i / n` into `--ramp`:
    /// `client(index, its URL (`{n}` in `url` made its index), its client, the stop)`.
    pub fn start<Run>(
        url: &str,
        streams: &StreamArgs,
        plan: &Plan,
        client: impl Fn(usize, Uri, Client, CancellationToken) -> Run,
    ) -> anyhow::Result<Self>
    where
        Run: Future<Output = ()> + Send + 'static,
    {
        let count = streams.streams as usize;
        let clients = Clients::new(
            plan.target.clone(),
            streams.connections,
            plan.connect_timeout,
        );
        let stop = CancellationToken::new();
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for index in 0..count {
            let stream_url: Uri = url
                .replace("{n}", &index.to_string())
                .parse()
                .map_err(|e| anyhow::anyhow!("--url with {{n}} = {index} is not a URL: {e}"))?;
            let start_at = started + plan.ramp.mul_f64(index as f64 / count as f64);
            let run = client(index, stream_url, clients.client(index), stop.clone());
            let stop = stop.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep_until(start_at) => run.await,
                }
            });
        }
        Ok(Self {
            tasks,
            stop,
            started,
        })
    }

    /// Tell every client to stop, and wait (briefly) for them to.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(STOP_WAIT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

/// The clients of one run: HTTP/2 and HTTP/3 clients share `--connections` connections, as
/// a browser's tabs share one per origin (a closed one is opened again by the first client
/// that needs it); HTTP/1.1 clients open their own for each attempt.
struct Clients {
    target: Target,
    groups: Vec<Arc<Group>>,
    timeout: Duration,
}

impl Clients {
    fn new(target: Target, connections: u64, timeout: Duration) -> Self {
        let groups = (0..connections.max(1))
            .map(|_| Arc::new(Group::default()))
            .collect();
        Self {
            target,
            groups,
            timeout,
        }
    }

    /// The client of stream `index`.
    fn client(&self, index: usize) -> Client {
        Client {
            target: self.target.clone(),
            group: (self.target.proto != Proto::H1)
                .then(|| self.groups[index % self.groups.len()].clone()),
            timeout: self.timeout,
        }
    }
}

/// A connection shared by a group of clients, opened again when it closed.
#[derive(Default)]
struct Group {
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// How one stream reaches the server: its own connection each time (HTTP/1.1), or its
/// group's shared one.
pub(super) struct Client {
    target: Target,
    group: Option<Arc<Group>>,
    timeout: Duration,
}

impl Client {
    async fn conn(&self) -> Result<Conn, String> {
        let Some(group) = &self.group else {
            return self.target.connect(self.timeout).await;
        };
        let mut shared = group.conn.lock().await;
        if let Some(conn) = shared.as_ref().filter(|conn| !conn.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = self.target.connect(self.timeout).await?;
        *shared = Some(conn.clone());
        Ok(conn)
    }

    /// Forget a shared connection that failed a request, so the next attempt opens another.
    async fn forget_conn(&self) {
        if let Some(group) = &self.group {
            *group.conn.lock().await = None;
        }
    }

    /// GET the stream as EventSource does, with `Last-Event-ID` when there is one.
    pub async fn open(&self, url: &Uri, last_event_id: &str) -> Result<Opened, Attempt> {
        let conn = self.conn().await.map_err(Attempt::NoServer)?;
        let mut request = conn
            .request("GET", url)
            .header(http::header::ACCEPT, "text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache");
        if !last_event_id.is_empty() {
            request = request.header("last-event-id", last_event_id);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| Attempt::Final(e.to_string()))?;
        let response = match tokio::time::timeout(self.timeout, conn.send(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(reason)) => {
                self.forget_conn().await;
                return Err(Attempt::NoServer(reason));
            }
            Err(_) => {
                self.forget_conn().await;
                return Err(Attempt::NoServer("response: timed out".into()));
            }
        };
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        if !response.status().is_success() {
            return Err(Attempt::Final(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        if !content_type.starts_with("text/event-stream") {
            return Err(Attempt::Final(format!(
                "not SSE (content-type {content_type})"
            )));
        }
        Ok(Opened {
            refused: refused(response.headers()),
            body: response.into_body(),
            _conn: conn,
        })
    }
}
