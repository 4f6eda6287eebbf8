//! Opening the streams and reading them: HTTP/2 and HTTP/3 streams share C connections opened
//! first, HTTP/1.1 streams each open their own. Each stream records into the [`Tally`] until
//! the run stops it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::client::ResponseBody;
use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::LoadArgs;
use super::stamp::{stamped, unix_nanos};
use super::tally::Tally;
use crate::bench::args::Plan;
use crate::bench::request::{refused, send};
use crate::client::{Conn, Proto, Target};
use crate::sse::names;
use crate::sse::parser::Parser;

/// Streams end at once when told to; this is for a machine too busy to schedule them.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The running stream tasks.
pub(super) struct Streams {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    progress: ProgressBar,
    /// When the ramp began.
    pub started: Instant,
}

impl Streams {
    /// Start `--streams` streams spread over `--ramp`. HTTP/2, HTTP/3: C shared connections, opened
    /// first; a failed one fails each of its streams with its reason. HTTP/1.1: one connection
    /// per stream, inside its task.
    pub async fn open(args: &LoadArgs, plan: &Plan, tally: &Arc<Tally>) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let (streams, connections) = (args.streams.streams, args.streams.connections);
        let progress = progress_bar(args.shared.json, streams);
        let timeout = plan.connect_timeout;
        // Per node (`--url`, then each `--also-url`), its C shared HTTP/2 or HTTP/3 connections.
        let mut h2_connections: Vec<Vec<Result<Conn, String>>> = Vec::new();
        for (_, target) in &plan.nodes {
            if target.proto != Proto::H1 {
                let connecting = (0..connections).map(|_| target.connect(timeout));
                h2_connections.push(futures_util::future::join_all(connecting).await);
            }
        }
        let nodes = plan.nodes.len() as u64;

        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for index in 0..streams {
            let start_at = started + plan.ramp.mul_f64(index as f64 / streams as f64);
            // Round-robin over the nodes: stream i on node i mod n.
            let node = (index % nodes) as usize;
            let (template, target) = &plan.nodes[node];
            let url: Uri = match template.replace("{n}", &index.to_string()).parse() {
                Ok(url) => url,
                Err(e) => anyhow::bail!("{template} with {{n}} = {index} is not a URL: {e}"),
            };
            let conn = if target.proto == Proto::H1 {
                None
            } else {
                let pool = &h2_connections[node];
                match &pool[((index / nodes) % connections) as usize] {
                    Ok(conn) => Some(conn.clone()),
                    Err(reason) => {
                        tally.fail(reason.clone());
                        continue;
                    }
                }
            };
            let (target, tally, stop, progress) = (
                target.clone(),
                tally.clone(),
                stop.clone(),
                progress.clone(),
            );
            tasks.spawn(async move {
                tokio::time::sleep_until(start_at).await;
                let opened = establish(index as usize, &url, conn, &target, timeout, &tally).await;
                if let Some(opened) = opened {
                    read(index as usize, opened, &tally, &stop).await;
                }
                progress.inc(1);
            });
        }
        Ok(Self {
            tasks,
            stop,
            progress,
            started,
        })
    }

    /// Every stream has answered (or the wait is over): the progress bar goes.
    pub fn opened(&self) {
        self.progress.finish_and_clear();
    }

    /// Stop every stream and wait (briefly) for their tasks to end.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(STOP_WAIT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

fn progress_bar(json: bool, streams: u64) -> ProgressBar {
    if json || streams < 1000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(streams);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} streams ({elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message("opening");
    bar
}

/// An established stream.
struct Opened {
    body: ResponseBody,
    began: Instant,
    /// Held while the body is read, as hyper may close a connection nobody can send on.
    _conn: Conn,
}

/// Open one stream (on `conn`, or a connection of its own) and check it is SSE; counts why
/// when it fails.
async fn establish(
    index: usize,
    url: &Uri,
    conn: Option<Conn>,
    target: &Target,
    timeout: Duration,
    tally: &Tally,
) -> Option<Opened> {
    let began = Instant::now();
    let conn = match conn {
        Some(conn) => conn,
        None => match target.connect(timeout).await {
            Ok(conn) => conn,
            Err(reason) => return failed(tally, reason),
        },
    };
    let response =
        match tokio::time::timeout(timeout, send(&conn, "GET", url, None, Bytes::new())).await {
            Ok(Ok(response)) => response,
            Ok(Err(reason)) => return failed(tally, reason),
            Err(_) => return failed(tally, "response: timed out".into()),
        };
    if !response.status().is_success() {
        return failed(tally, format!("HTTP {}", response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        return failed(tally, format!("not SSE (content-type {content_type})"));
    }
    // What a browser's EventSource would read as a short stream and come back from.
    if let Some(reason) = refused(response.headers()) {
        tally.refuse(reason);
        return None;
    }
    tally
        .establish
        .record(index, began.elapsed().as_micros() as u64);
    tally.established.fetch_add(1, Ordering::Relaxed);
    Some(Opened {
        body: response.into_body(),
        began,
        _conn: conn,
    })
}

fn failed<T>(tally: &Tally, reason: String) -> Option<T> {
    tally.fail(reason);
    None
}

/// Read events until told to stop: time to the first, and once measuring, every event's
/// count, sequence number and delivery latency.
async fn read(index: usize, opened: Opened, tally: &Tally, stop: &CancellationToken) {
    let Opened {
        mut body,
        began,
        _conn,
    } = opened;
    let mut parser = Parser::new();
    let mut first_event = true;
    let mut seqs: HashSet<u64> = HashSet::new();
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            frame = body.frame() => frame,
        };
        let data = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(_)) | None => {
                if !stop.is_cancelled() {
                    tally.ended_early.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        let now_ns = unix_nanos();
        for event in parser.feed(&data) {
            if first_event {
                first_event = false;
                tally
                    .first_event
                    .record(index, began.elapsed().as_micros() as u64);
            }
            // The `connected` frame opens a stream; it is not an event delivered to it. A
            // stream whose first frame comes after the window opened (established, headers
            // read, the frame still on its way: seen with 200 HTTP/1.1 streams on a busy
            // machine) counted it once too many.
            if !tally.measuring.is_cancelled() || event.event == names::CONNECTED.as_str() {
                continue;
            }
            tally.events.fetch_add(1, Ordering::Relaxed);
            if let Some((sent_ns, seq)) = stamped(&event.data) {
                if seqs.insert(seq) {
                    tally.unique_seqs.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                tally
                    .latency
                    .record(index, now_ns.saturating_sub(sent_ns) / 1000);
            }
        }
    }
}
