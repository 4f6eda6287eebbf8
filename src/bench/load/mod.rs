//! `sselab bench load`: N streams over HTTP/1.1 (one connection each), HTTP/2 or HTTP/3
//! (spread over C connections), each following one topic or K on one stream, optionally
//! publishing timestamped, numbered events at a fixed rate; it reports establishment,
//! first-event time, delivery latency, lost and duplicated sequence numbers, and the server's
//! RSS per stream from its Prometheus endpoint.
//!
//! Every wait is bounded: a run ends by `--ramp` + connect timeout + `--duration` + `--drain`,
//! whatever the target does. It refuses non-loopback targets unless `--allow-remote`.
//!
//! [`run`] is the steps in order, one file each: `args` (flags checked into a plan),
//! `streams` (open and read them), `measure` (the bounded waits; `publish` in fan-out mode),
//! the server's metrics (`bench::scrape`), `report` (summed up from the `tally`); `topics`
//! writes `--topics-per-stream`'s topics into the URLs.

mod args;
mod measure;
mod publish;
mod report;
mod stamp;
mod streams;
mod tally;
mod topics;

use std::sync::Arc;

pub use args::LoadArgs;
pub use publish::PublishReport;
pub use report::Report;
use report::ServerReadings;
use streams::Streams;
use tally::Tally;

use crate::bench::scrape::Scraper;

/// Run the load test and give its report.
pub async fn run(args: LoadArgs) -> anyhow::Result<Report> {
    let load = args.plan()?;
    let plan = &load.streams;
    let timeout = plan.connect_timeout;
    let scraper = Scraper::new(args.server_metrics.as_deref(), &args.shared, timeout);
    let before = match &scraper {
        Some(scraper) => Some(scraper.first("before the streams opened").await?),
        None => None,
    };

    let tally = Arc::new(Tally::new());
    let streams = Streams::open(&args, plan, &tally).await?;
    let establish_deadline = streams.started + plan.ramp + timeout;
    measure::until_established(&tally, args.streams.streams, establish_deadline).await;
    streams.opened();
    let with_streams = Scraper::read_if(&scraper, "with the streams open").await;

    let window = measure::window(&args, &load, &tally).await?;
    streams.stop().await;
    let after_run = Scraper::read_if(&scraper, "after the run").await;

    // All there with --server-metrics, none without.
    let server = match (before, with_streams, after_run) {
        (Some(before), Some(with_streams), Some(after_run)) => Some(ServerReadings {
            before,
            with_streams,
            after_run,
        }),
        _ => None,
    };
    Ok(Report::build(
        &args,
        plan.target.proto,
        &tally,
        window,
        server,
    ))
}
