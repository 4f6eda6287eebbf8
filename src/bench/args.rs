//! The flags more than one bench mode takes, and the checks that turn them into a plan before
//! anything opens. Each mode's own flags live with it (`load/args.rs`, `reconnect/args.rs`,
//! `attack/args.rs`), so clap refuses a flag that does not apply to the mode asked for.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use http::Uri;

use crate::client::{Proto, Target};

/// Every mode: the stream to reach, how, and how to print what was seen.
#[derive(Debug, Clone, Args)]
pub struct SharedArgs {
    // The placeholder is spelled out: clap's help prints `{n}` as a line break.
    /// The stream URL. Each stream's index replaces the placeholder `{` `n` `}` (no spaces)
    /// in it, so each stream can be a session.
    #[arg(long, value_name = "URL")]
    pub url: String,
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
    /// Seconds a connection or a response may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// More log output: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The modes that open many streams (load, reconnect): how many, over what, how fast.
#[derive(Debug, Clone, Args)]
pub struct StreamArgs {
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
    /// Seconds over which to open the streams.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub ramp: f64,
    /// Allow targets outside the loopback range (127.0.0.0/8, ::1).
    #[arg(long)]
    pub allow_remote: bool,
}

/// The stream flags checked and resolved: where the streams go and how long each phase lasts.
pub(super) struct Plan {
    pub target: Target,
    /// Every node the streams are split over, `--url` first: its URL template and target.
    pub nodes: Vec<(String, Target)>,
    pub ramp: Duration,
    pub duration: Duration,
    pub connect_timeout: Duration,
}

impl StreamArgs {
    /// Check the stream flags and resolve `url` (flag `--url`) and each of `also_urls` (flag
    /// `--also-url`), refusing non-loopback targets unless `--allow-remote`. Opens nothing.
    pub(super) fn plan(
        &self,
        shared: &SharedArgs,
        url: &str,
        also_urls: &[String],
        duration: f64,
    ) -> anyhow::Result<Plan> {
        let node = |flag: &str, url: &str| {
            // The default protocol: h2 for https, h1 for http.
            let target =
                shared.target(flag, url, |https| if https { Proto::H2 } else { Proto::H1 })?;
            if !self.allow_remote {
                on_loopback(
                    url,
                    &target,
                    "load tests stay on this machine unless --allow-remote",
                )?;
            }
            Ok::<_, anyhow::Error>(target)
        };
        let target = node("--url", url)?;
        let mut nodes = vec![(url.to_string(), target.clone())];
        for url in also_urls {
            nodes.push((url.clone(), node("--also-url", url)?));
        }
        Ok(Plan {
            target,
            nodes,
            ramp: secs(self.ramp, "--ramp")?,
            duration: secs(duration, "--duration")?,
            connect_timeout: secs(shared.connect_timeout, "--connect-timeout")?,
        })
    }
}

impl SharedArgs {
    /// The target of one stream URL (`flag` names it in errors; `{n}` read as 0) over
    /// `--proto`, or `default(https)` without it.
    pub(super) fn target(
        &self,
        flag: &str,
        url: &str,
        default: impl FnOnce(bool) -> Proto,
    ) -> anyhow::Result<Target> {
        let uri: Uri = url
            .replace("{n}", "0")
            .parse()
            .with_context(|| format!("{flag} {url} is not a URL"))?;
        let proto = self
            .proto
            .unwrap_or_else(|| default(uri.scheme_str() == Some("https")));
        Target::new(&uri, proto, self.cacert.as_deref(), self.insecure)
    }
}

/// Refuse `url`'s `target` unless it is on loopback; `rule` says why, and the way out if any.
pub(super) fn on_loopback(url: &str, target: &Target, rule: &str) -> anyhow::Result<()> {
    if !target.addr.ip().is_loopback() {
        bail!(
            "{url} resolves to {}, outside loopback: {rule}",
            target.addr.ip()
        );
    }
    Ok(())
}

/// `value` seconds as a duration, from 0 to `max`; `flag` names it in the error.
pub(super) fn secs_up_to(value: f64, max: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        bail!("{flag} must be a number of seconds from 0 to {max}, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// `value` seconds, up to a day.
pub(super) fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    secs_up_to(value, 86_400.0, flag)
}
