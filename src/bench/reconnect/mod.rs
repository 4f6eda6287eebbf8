//! `sselab bench reconnect`: what a restart does to the clients. Every stream is read until
//! the server ends it; then, like a browser's EventSource, it waits the last `retry:` it
//! received, reconnects with its `Last-Event-ID`, and waits its `retry:` again whenever no
//! server answers or the answer is a refusal stream (the new server is full for now: its
//! `refused` event's `retry:` says when to come back, as it tells a browser). When each reconnect was answered, counted from the moment the first stream
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

use http::Uri;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use args::ReconnectArgs;
use outcome::Outcome;
pub use report::ReconnectReport;

use super::event_source::{
    Attempt, BROWSER_DEFAULT_RETRY_MS, Client, MIN_REATTEMPT, Running, read_to_end,
};
use super::request::refused_failure;
use crate::sse::parser::Parser;
use crate::sync::lock;

/// How often the run looks at the outcomes.
const POLL: Duration = Duration::from_millis(20);

type Outcomes = Arc<Mutex<Vec<Outcome>>>;

/// Open `--streams` streams, wait for the server to end them and for each to come back, and
/// report when they did.
pub async fn run(args: ReconnectArgs) -> anyhow::Result<ReconnectReport> {
    let plan = args
        .streams
        .plan(&args.shared, &args.shared.url, &[], args.duration)?;
    let outcomes: Outcomes = Arc::new(Mutex::new(vec![
        Outcome::default();
        args.streams.streams as usize
    ]));
    let running = Running::start(
        &args.shared.url,
        &args.streams,
        &plan,
        |index, url, client, stop| {
            let outcomes = outcomes.clone();
            async move { follow(index, &url, &client, &outcomes, &stop).await }
        },
    )?;
    let opened_by = running.started + plan.ramp + plan.connect_timeout;
    wait_until(&outcomes, opened_by, |o| {
        o.established || o.failure.is_some()
    })
    .await;
    wait_until(&outcomes, Instant::now() + plan.duration, Outcome::settled).await;
    running.stop().await;
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
    let mut opened = match client.open(url, "").await {
        // Refused before the restart: this stream is not part of what is measured.
        Ok(opened) if opened.refused.is_some() => {
            let reason = refused_failure(opened.refused.as_deref().unwrap_or_default());
            return record(&|o| o.failure = Some(reason.clone()));
        }
        Ok(opened) => opened,
        Err(attempt) => return record(&|o| o.failure = Some(attempt.reason().to_string())),
    };
    record(&|o| o.established = true);
    let mut parser = Parser::new();
    if !read_to_end(&mut opened, &mut parser, stop, drop).await {
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
            // Full for now: like a browser, read its `retry:` and come back after it.
            Ok(mut refusal) if refusal.refused.is_some() => {
                let mut told = Parser::new();
                if !read_to_end(&mut refusal, &mut told, stop, drop).await {
                    return;
                }
                record(&|o| o.refused += 1);
                if let Some(retry_ms) = told.retry() {
                    wait = Duration::from_millis(retry_ms).max(MIN_REATTEMPT);
                }
            }
            Ok(mut opened) => {
                let at = Instant::now();
                let resumed = !parser.last_event_id().is_empty();
                record(&|o| {
                    o.reconnected_at = Some(at);
                    o.answer_took = Some(at - attempt);
                    o.resumed = resumed;
                });
                // Held open like the browser would, so the server carries them again.
                read_to_end(&mut opened, &mut Parser::new(), stop, drop).await;
                return;
            }
            Err(Attempt::NoServer(_)) => {
                record(&|o| o.without_server += 1);
                wait = wait.max(MIN_REATTEMPT);
            }
            Err(Attempt::Final(reason)) => {
                return record(&|o| o.failure = Some(format!("gave up: {reason}")));
            }
        }
    }
}
