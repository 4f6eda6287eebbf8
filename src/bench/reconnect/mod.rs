//! `sselab bench reconnect`: what a restart does to the clients. Every stream is read until
//! the server ends it; then, like a browser's EventSource, it waits the last `retry:` it
//! received, reconnects with its `Last-Event-ID`, and waits its `retry:` again whenever no
//! server answers. When each reconnect was answered, counted from the moment the first stream
//! ended, is the histogram that shows a reconnect storm or its absence.
//!
//! It does not restart the server itself: whoever runs it does (`scripts/bench.sh reconnect`
//! sends SIGTERM and starts sselab again on the same ports), so it measures any SSE server.
//! Every wait is bounded: the streams get `--ramp` + the connect timeout to open, then
//! `--duration` for the server to end them and for them to come back.
//!
//! `outcome` is what happened to each stream, `report` sums the outcomes up.

mod args;
mod outcome;
mod report;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use args::ReconnectArgs;
use outcome::Outcome;
pub use report::{Bucket, ReconnectReport, Spread};

use crate::client::{Conn, Proto, ResponseBody, Target};
use crate::sse::parser::Parser;
use crate::sync::lock;

/// The reconnection time of a stream that never sent `retry:`: Chromium's
/// `EventSource::kDefaultReconnectDelay` (Firefox uses 5000).
const BROWSER_DEFAULT_RETRY_MS: u64 = 3000;
/// A retry after an attempt that found no server waits at least this long, so a `retry: 0`
/// does not spin against a closed port.
const MIN_REATTEMPT: Duration = Duration::from_millis(100);
/// How often the run looks at the outcomes.
const POLL: Duration = Duration::from_millis(20);
/// Streams stop at once when told to; this is for a machine too busy to schedule them.
const STOP_WAIT: Duration = Duration::from_secs(5);

type Outcomes = Arc<Mutex<Vec<Outcome>>>;

/// Open `--streams` streams, wait for the server to end them and for each to come back, and
/// report when they did.
pub async fn run(args: ReconnectArgs) -> anyhow::Result<ReconnectReport> {
    let plan = args.streams.plan(&args.shared, &[], args.duration)?;
    let streams = args.streams.streams as usize;
    let outcomes: Outcomes = Arc::new(Mutex::new(vec![Outcome::default(); streams]));
    let stop = CancellationToken::new();
    // HTTP/2: the streams share C connections, as a browser's tabs share one per origin; a
    // closed one is opened again by the first stream that needs it.
    let groups: Vec<Arc<Group>> = (0..args.streams.connections)
        .map(|_| Arc::new(Group::default()))
        .collect();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..streams {
        let url: Uri = args
            .shared
            .url
            .replace("{n}", &index.to_string())
            .parse()
            .map_err(|e| anyhow::anyhow!("--url with {{n}} = {index} is not a URL: {e}"))?;
        let client = Client {
            target: plan.target.clone(),
            group: (plan.target.proto != Proto::H1).then(|| groups[index % groups.len()].clone()),
            timeout: plan.connect_timeout,
        };
        let start_at = started + plan.ramp.mul_f64(index as f64 / streams as f64);
        let (outcomes, stop) = (outcomes.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(start_at).await;
            follow(index, &url, &client, &outcomes, &stop).await;
        });
    }

    let opened_by = started + plan.ramp + plan.connect_timeout;
    wait_until(&outcomes, opened_by, |o| {
        o.established || o.failure.is_some()
    })
    .await;
    wait_until(&outcomes, Instant::now() + plan.duration, Outcome::settled).await;
    stop.cancel();
    let _ = tokio::time::timeout(STOP_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let outcomes = lock(&outcomes).clone();
    Ok(ReconnectReport::build(&args, plan.target.proto, &outcomes))
}

/// Until `done` holds for every stream, or `deadline`.
async fn wait_until(outcomes: &Outcomes, deadline: Instant, done: impl Fn(&Outcome) -> bool) {
    while !lock(outcomes).iter().all(&done) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// One browser-like stream: open, read to the server's end, then reconnect after `retry:`.
async fn follow(
    index: usize,
    url: &Uri,
    client: &Client,
    outcomes: &Outcomes,
    stop: &CancellationToken,
) {
    let record = |change: &dyn Fn(&mut Outcome)| change(&mut lock(outcomes)[index]);
    let opened = match client.open(url, "").await {
        Ok(opened) => opened,
        Err(attempt) => return record(&|o| o.failure = Some(attempt.reason().to_string())),
    };
    record(&|o| o.established = true);
    let mut parser = Parser::new();
    if !read_to_end(opened, &mut parser, stop).await {
        return;
    }
    let ended_at = Instant::now();
    let retry_ms = parser.retry().unwrap_or(BROWSER_DEFAULT_RETRY_MS);
    record(&|o| {
        o.ended_at = Some(ended_at);
        o.retry_ms = Some(retry_ms);
    });
    let mut wait = Duration::from_millis(retry_ms);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let attempt = Instant::now();
        match client.open(url, parser.last_event_id()).await {
            Ok(opened) => {
                let at = Instant::now();
                let resumed = !parser.last_event_id().is_empty();
                record(&|o| {
                    o.reconnected_at = Some(at);
                    o.answer_took = Some(at - attempt);
                    o.resumed = resumed;
                });
                // Held open like the browser would, so the server carries them again.
                read_to_end(opened, &mut Parser::new(), stop).await;
                return;
            }
            Err(Attempt::NoServer(_)) => {
                record(&|o| o.without_server += 1);
                wait = wait.max(MIN_REATTEMPT);
            }
            Err(Attempt::Refused(reason)) => {
                return record(&|o| o.failure = Some(format!("gave up: {reason}")));
            }
        }
    }
}

/// An open stream.
struct Opened {
    body: ResponseBody,
    /// Held while the body is read, as hyper may close a connection nobody can send on.
    _conn: Conn,
}

/// Read until the server ends the stream (true) or the run stops (false).
async fn read_to_end(opened: Opened, parser: &mut Parser, stop: &CancellationToken) -> bool {
    let Opened { mut body, _conn } = opened;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return false,
            frame = body.frame() => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    parser.feed(&data);
                }
            }
            // A clean end, a reset or a closed connection: the stream is over either way.
            Some(Err(_)) | None => return true,
        }
    }
}

/// Why an attempt to open a stream did not give one.
enum Attempt {
    /// No server answered (refused, reset, timed out): a browser tries again after `retry:`.
    NoServer(String),
    /// A server answered with something other than a 200 event stream: a browser gives up.
    Refused(String),
}

impl Attempt {
    fn reason(&self) -> &str {
        match self {
            Attempt::NoServer(reason) | Attempt::Refused(reason) => reason,
        }
    }
}

/// An HTTP/2 connection shared by a group of streams, opened again when it closed.
#[derive(Default)]
struct Group {
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// How one stream reaches the server: its own connection each time (HTTP/1.1), or its
/// group's shared one (HTTP/2).
struct Client {
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
    async fn open(&self, url: &Uri, last_event_id: &str) -> Result<Opened, Attempt> {
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
            .map_err(|e| Attempt::Refused(e.to_string()))?;
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
            return Err(Attempt::Refused(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        if !content_type.starts_with("text/event-stream") {
            return Err(Attempt::Refused(format!(
                "not SSE (content-type {content_type})"
            )));
        }
        Ok(Opened {
            body: response.into_body(),
            _conn: conn,
        })
    }
}
