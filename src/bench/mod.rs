//! `sselab bench`: a load generator for any SSE server, on hyper's HTTP/1.1 and HTTP/2
//! clients and h3's HTTP/3 one. It opens N streams (HTTP/1.1: one connection each; HTTP/2 and
//! HTTP/3: spread over C connections), optionally publishes timestamped, numbered events at a fixed rate, and
//! reports establishment, first-event time, delivery latency, lost and duplicated sequence
//! numbers, and the server's RSS per stream from its Prometheus endpoint.
//!
//! Every wait is bounded: a run ends by `--ramp` + connect timeout + `--duration` + `--drain`,
//! whatever the target does. It refuses non-loopback targets unless `--allow-remote`.
//!
//! [`run`] is the steps in order, one file each: `args` (flags checked into a plan),
//! `streams` (open and read them), `measure` (the bounded waits; `publish` in fan-out mode),
//! `scrape` (the server's Prometheus view), `report` (summed up from the `tally`).
//!
//! [`run_reconnect`] (`--reconnect`) is the restart mode: the streams are read until the
//! server ends them, reconnect like browsers after the `retry:` they were told, and
//! `reconnect_report` shows when they came back (a storm, or a spread).
//!
//! [`attack::run`] (`--attack`) is the attack mode: a misbehaving client against a server on
//! this machine, with a control client timing what a normal one still gets.

mod args;
pub mod attack;
mod measure;
mod publish;
mod reconnect;
mod reconnect_report;
mod report;
mod scrape;
mod stamp;
mod streams;
mod tally;

use std::sync::Arc;

use crate::client::ResponseBody;
use bytes::Bytes;
use http::{Response, Uri};
use http_body_util::Full;

use crate::client::Conn;
pub use crate::client::Proto;
pub use args::BenchArgs;
pub use reconnect_report::{Bucket, ReconnectReport, Spread};
pub use report::{Percentiles, PublishReport, Report};
use scrape::ServerMetrics;
use streams::Streams;
use tally::Tally;

/// Run the bench and give its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.attack.kind.is_none(),
        "--attack runs with bench::attack::run"
    );
    let plan = args.plan()?;
    let timeout = plan.connect_timeout;
    let before = scrape::server_metrics(&args, timeout).await?;

    let tally = Arc::new(Tally::new());
    let streams = Streams::open(&args, &plan, &tally).await?;
    let establish_deadline = streams.started + plan.ramp + timeout;
    measure::until_established(&tally, args.streams, establish_deadline).await;
    streams.opened();
    let with_streams = scrape::server_metrics(&args, timeout).await.ok().flatten();

    let window = measure::window(&args, &plan, &tally).await?;
    streams.stop().await;
    let after_run = scrape::server_metrics(&args, timeout).await.ok().flatten();

    let server = ServerMetrics {
        before,
        with_streams,
        after_run,
    };
    Ok(Report::build(
        &args,
        plan.target.proto,
        &tally,
        window,
        server,
    ))
}

/// `--reconnect`: open the streams, let the server end them (its restart), reconnect each
/// like a browser after its `retry:`, and report when they came back.
pub async fn run_reconnect(args: BenchArgs) -> anyhow::Result<ReconnectReport> {
    reconnect::run(&args).await
}

/// One bench request. Each asks for an event stream, as the bench always has.
async fn send(
    conn: &Conn,
    method: &str,
    uri: &Uri,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response<ResponseBody>, String> {
    let mut builder = conn
        .request(method, uri)
        .header(http::header::ACCEPT, "text/event-stream");
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    conn.send(request).await
}
