//! `sselab bench storm`: a refusal storm, seen from the clients. More clients than the
//! server's cap start at once, each behaving like a browser's EventSource for the whole run:
//! it opens the stream (with its `Last-Event-ID` once it has one), reads it to its end — a
//! stream that times out (`?timeout=`), or a refusal stream, `200` with one `refused` event
//! — and comes back after the last `retry:` it was told, again and again until `--duration`.
//! Every attempt's time is recorded; the report shows when refused clients came back,
//! counted from their own refusal: all at once (no jitter), or spread over the window the
//! server's `--retry-jitter` opens.
//!
//! Why a mode of its own and not a flag of `reconnect`: `reconnect` follows each stream
//! through one event it does not cause (a restart) and stops at the first answer after it;
//! a storm is the clients' own steady state at a full server, many attempts per client,
//! and what it reports is each refusal and the return that followed it.
//!
//! It causes nothing but requests, any SSE server will do, and every wait is bounded: the
//! clients stop at `--duration`, whatever the server does. `log` is what each client did,
//! `report` sums it up.

mod args;
mod log;
mod report;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use args::StormArgs;
pub use report::StormReport;

use super::event_source::{
    Attempt, BROWSER_DEFAULT_RETRY_MS, Client, MIN_REATTEMPT, Running, read_to_end,
};
use crate::sse::parser::Parser;
use crate::sync::lock;
use log::{Answer, Try};

type Logs = Arc<Mutex<Vec<Vec<Try>>>>;

/// Run the storm for `--duration` and report what the clients saw.
pub async fn run(args: StormArgs) -> anyhow::Result<StormReport> {
    let plan = args
        .streams
        .plan(&args.shared, &args.shared.url, &[], args.duration)?;
    let logs: Logs = Arc::new(Mutex::new(vec![Vec::new(); args.streams.streams as usize]));
    let running = Running::start(
        &args.shared.url,
        &args.streams,
        &plan,
        |index, url, client, stop| {
            let logs = logs.clone();
            async move { event_source(index, &url, &client, &logs, &stop).await }
        },
    )?;
    let started = running.started;
    tokio::time::sleep_until(started + plan.duration).await;
    let stopped = Instant::now();
    running.stop().await;
    let logs = lock(&logs).clone();
    Ok(StormReport::build(
        &args,
        plan.target.proto,
        &logs,
        started,
        stopped,
    ))
}

/// One client, as a browser's EventSource: open, read to the end, wait the reconnection
/// time (the last `retry:` any answer set), open again with `Last-Event-ID`; give up only
/// on an answer that is not an event stream.
async fn event_source(
    index: usize,
    url: &Uri,
    client: &Client,
    logs: &Logs,
    stop: &CancellationToken,
) {
    let log = |change: &mut dyn FnMut(&mut Vec<Try>)| change(&mut lock(logs)[index]);
    let answer = |answer: Answer| {
        log(&mut |tries| {
            if let Some(last) = tries.last_mut() {
                last.answer = answer.clone();
            }
        })
    };
    let mut retry_ms = BROWSER_DEFAULT_RETRY_MS;
    let mut last_event_id = String::new();
    loop {
        log(&mut |tries| {
            tries.push(Try {
                sent: Instant::now(),
                resumed: !last_event_id.is_empty(),
                answer: Answer::Pending,
            })
        });
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            opened = client.open(url, &last_event_id) => opened,
        };
        let mut wait_at_least = Duration::ZERO;
        match opened {
            Ok(mut opened) => {
                let refused = opened.refused.take();
                if refused.is_none() {
                    answer(Answer::Stream { ended: None });
                }
                let mut parser = Parser::new();
                let mut with_id = false;
                let ended = read_to_end(&mut opened, &mut parser, stop, |event| {
                    with_id |= !event.id.is_empty();
                })
                .await;
                // What a browser keeps from any answer: the reconnection time, and the id.
                if let Some(told) = parser.retry() {
                    retry_ms = told;
                }
                if !parser.last_event_id().is_empty() {
                    last_event_id = parser.last_event_id().to_string();
                }
                if !ended {
                    return;
                }
                let at = Instant::now();
                match refused {
                    Some(reason) => {
                        wait_at_least = MIN_REATTEMPT;
                        answer(Answer::Refused {
                            reason,
                            ended: at,
                            told_ms: parser.retry(),
                            with_id,
                        });
                    }
                    None => answer(Answer::Stream { ended: Some(at) }),
                }
            }
            Err(Attempt::NoServer(reason)) => {
                wait_at_least = MIN_REATTEMPT;
                answer(Answer::NoServer(reason));
            }
            Err(Attempt::Final(reason)) => return answer(Answer::Final(reason)),
        }
        let wait = Duration::from_millis(retry_ms).max(wait_at_least);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
