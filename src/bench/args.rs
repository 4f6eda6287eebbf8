//! `sselab bench`'s flags, and the checks that turn them into a plan before anything opens.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use http::Uri;

use crate::client::{Proto, Target};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The stream URL; `{n}` is replaced by each stream's index (so each can be a session).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Another node serving the same streams (sselab --redis): the streams are split
    /// round-robin over --url and each of these. Repeat for more nodes.
    #[arg(long, value_name = "URL", conflicts_with = "reconnect")]
    pub also_url: Vec<String>,
    /// How many streams.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub streams: u64,
    /// HTTP/2 or HTTP/3 connections to spread the streams over (HTTP/1.1 uses one per
    /// stream). HTTP/3: a connection carries at most the server's stream limit at once
    /// (sselab's --h3-max-streams, 100 by default); streams past it wait for one to end and
    /// fail as "response: timed out", so use at least streams / limit connections.
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub connections: u64,
    /// h1, h2 (TLS), h2c (plain) or h3 (QUIC, https URLs: UDP at the URL's port); default h2
    /// for https URLs and h1 for http.
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,
    /// Accept any server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Trust this PEM certificate (e.g. certs/cert.pem).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Seconds to measure (after the streams are established); with --reconnect, how long
    /// the server has to stop and the streams to come back.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds over which to open the streams.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub ramp: f64,
    /// Fan-out mode: POST `{"t":<unix ns>,"seq":n}` (text/plain) here at --rate per second.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// Publishes per second in fan-out mode.
    #[arg(long, value_name = "R", default_value_t = 10.0)]
    pub rate: f64,
    /// The server's Prometheus endpoint, to read its RSS (and CPU) before and after.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
    /// Seconds to wait after publishing stops for the last events to arrive.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub drain: f64,
    /// Seconds a connection or a response may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Restart mode: open the streams, wait for the server to end them (restart it meanwhile;
    /// `scripts/bench.sh reconnect` does), reconnect each like a browser after the last
    /// `retry:` it received, and print when the reconnects arrived. `--duration` bounds the
    /// whole wait, from the streams being open to the last reconnect.
    #[arg(long, conflicts_with_all = ["publish_url", "server_metrics"])]
    pub reconnect: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow targets outside the loopback range (127.0.0.0/8, ::1).
    #[arg(long)]
    pub allow_remote: bool,
    /// More log output: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub attack: super::attack::AttackArgs,
}

/// The flags checked and resolved: where the streams go and how long each phase lasts.
pub(super) struct Plan {
    pub target: Target,
    /// Every node the streams are split over, `--url` first: its URL template and target.
    pub nodes: Vec<(String, Target)>,
    pub ramp: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub connect_timeout: Duration,
}

impl BenchArgs {
    /// Check every flag and resolve the target, refusing non-loopback targets unless
    /// `--allow-remote`. Opens nothing.
    pub(super) fn plan(&self) -> anyhow::Result<Plan> {
        let target = self.target("--url", &self.url)?;
        let mut nodes = vec![(self.url.clone(), target.clone())];
        for url in &self.also_url {
            nodes.push((url.clone(), self.target("--also-url", url)?));
        }
        let plan = Plan {
            target,
            nodes,
            ramp: secs(self.ramp, "--ramp")?,
            duration: secs(self.duration, "--duration")?,
            drain: secs(self.drain, "--drain")?,
            connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
        };
        if self.publish_url.is_some()
            && !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100_000.0)
        {
            bail!(
                "--rate must be from 0 (exclusive) to 100000 publishes per second, got {}",
                self.rate
            );
        }
        Ok(plan)
    }
}

impl BenchArgs {
    /// The target of one stream URL (`flag` names it in errors), loopback unless
    /// `--allow-remote`.
    fn target(&self, flag: &str, url: &str) -> anyhow::Result<Target> {
        let uri: Uri = url
            .replace("{n}", "0")
            .parse()
            .with_context(|| format!("{flag} {url} is not a URL"))?;
        let https = uri.scheme_str() == Some("https");
        let proto = self
            .proto
            .unwrap_or(if https { Proto::H2 } else { Proto::H1 });
        let target = Target::new(&uri, proto, self.cacert.as_deref(), self.insecure)?;
        if !self.allow_remote && !target.addr.ip().is_loopback() {
            bail!(
                "{url} resolves to {}, outside loopback: load tests stay on this machine unless --allow-remote",
                target.addr.ip()
            );
        }
        Ok(target)
    }
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        bail!("{flag} must be a number of seconds from 0 to 86400, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}
