//! `sselab bench load`'s flags, and the checks that turn them into a plan before anything
//! opens.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::bench::args::{Plan, SharedArgs, StreamArgs, secs};

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Another node serving the same streams (sselab --redis): the streams are split
    /// round-robin over --url and each of these. Repeat for more nodes.
    #[arg(long, value_name = "URL")]
    pub also_url: Vec<String>,
    /// Seconds to measure, after the streams are established.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Fan-out mode: POST `{"t":<unix ns>,"seq":n}` (text/plain) here at --rate per second.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// Publishes per second in fan-out mode.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 10.0,
        requires = "publish_url"
    )]
    pub rate: f64,
    /// Seconds to wait after publishing stops for the last events to arrive.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        requires = "publish_url"
    )]
    pub drain: f64,
    /// The server's Prometheus endpoint, to read its RSS (and CPU) before and after.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
}

impl LoadArgs {
    /// Check every flag and resolve the targets, refusing non-loopback ones unless
    /// `--allow-remote`: the streams' plan and the drain. Opens nothing.
    pub(super) fn plan(&self) -> anyhow::Result<(Plan, Duration)> {
        let plan = self
            .streams
            .plan(&self.shared, &self.also_url, self.duration)?;
        let drain = secs(self.drain, "--drain")?;
        if self.publish_url.is_some()
            && !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100_000.0)
        {
            bail!(
                "--rate must be from 0 (exclusive) to 100000 publishes per second, got {}",
                self.rate
            );
        }
        Ok((plan, drain))
    }
}
