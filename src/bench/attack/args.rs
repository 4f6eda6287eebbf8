//! `sselab bench attack`'s flags, and the checks that turn them into a plan. An attack only
//! ever runs against this machine: a non-loopback target is refused whatever else is given.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use http::Uri;

use crate::bench::args::{SharedArgs, on_loopback, secs_up_to};
use crate::client::{Proto, Target};

/// The attacks `sselab bench attack` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// HTTP/2 streams opened and reset at once, 100 per write, as fast as the writes go
    /// (CVE-2023-44487); needs --proto h2 or h2c.
    RapidReset,
    /// HTTP/1.1 connections that trickle their request headers a byte a second and never end
    /// them; on https, every other one never starts its TLS handshake. Needs --proto h1.
    Slowloris,
    /// HTTP/2 header blocks that never end: HEADERS, then CONTINUATION frames of fresh 1 KB
    /// fields, as fast as the writes go; needs --proto h2 or h2c.
    Continuation,
}

impl AttackKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::RapidReset => "rapid-reset",
            Self::Slowloris => "slowloris",
            Self::Continuation => "continuation",
        }
    }

    /// Connections attacking at once when `--attack-connections` is not given: a few fast
    /// HTTP/2 connections, or a thousand slow ones.
    fn default_connections(self) -> u64 {
        match self {
            Self::RapidReset | Self::Continuation => 4,
            Self::Slowloris => 1000,
        }
    }

    fn is_http2(self) -> bool {
        matches!(self, Self::RapidReset | Self::Continuation)
    }
}

#[derive(Debug, Clone, Args)]
pub struct AttackArgs {
    /// The attack. A control client opens a fresh connection to --url and times its first
    /// event, alone for --before seconds, then during the attack for --duration seconds.
    #[arg(value_name = "KIND", value_enum)]
    pub kind: AttackKind,

    #[command(flatten)]
    pub shared: SharedArgs,

    /// Attacking connections at once (rapid-reset and continuation: 4, slowloris: 1000).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub attack_connections: Option<u64>,

    /// The attack stops by itself after this many resets (rapid-reset) or connections opened
    /// (slowloris, continuation), if --duration has not ended it first.
    #[arg(long, value_name = "N", default_value_t = 100_000_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub attack_limit: u64,

    /// Seconds the control client runs alone first, for the numbers to compare against.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub before: f64,

    /// Seconds of attack, the control client timing alongside.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,

    /// The server's Prometheus endpoint, to read its CPU and RSS before, during and after
    /// the attack.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
}

/// The attack flags checked and resolved.
pub(super) struct AttackPlan {
    pub kind: AttackKind,
    /// The control's stream; the attack goes to the same listener.
    pub url: Uri,
    pub target: Target,
    pub connections: u64,
    pub limit: u64,
    pub before: Duration,
    pub duration: Duration,
    pub connect_timeout: Duration,
}

/// Longest phase of an attack run.
const MAX_PHASE_SECS: f64 = 3600.0;

impl AttackArgs {
    /// Check the flags of an attack run. The target must be on loopback: an attack has no
    /// `--allow-remote`.
    pub(super) fn plan(&self) -> anyhow::Result<AttackPlan> {
        let (kind, shared) = (self.kind, &self.shared);
        let target = shared.target("--url", &shared.url, |https| {
            match (kind.is_http2(), https) {
                (true, true) => Proto::H2,
                (true, false) => Proto::H2c,
                (false, _) => Proto::H1,
            }
        })?;
        match (kind.is_http2(), target.proto) {
            (_, Proto::H3) => bail!(
                "the {} attack has no HTTP/3 form here: use --proto h1, h2 or h2c",
                kind.name()
            ),
            (true, Proto::H1) => bail!(
                "{} is an HTTP/2 attack: use --proto h2 (https) or h2c",
                kind.name()
            ),
            (false, Proto::H2 | Proto::H2c) => {
                bail!("slowloris trickles HTTP/1.1 headers: use --proto h1")
            }
            _ => {}
        }
        on_loopback(
            &shared.url,
            &target,
            "an attack only runs against this machine",
        )?;
        let url: Uri = shared
            .url
            .replace("{n}", "0")
            .parse()
            .with_context(|| format!("--url {} is not a URL", shared.url))?;
        let secs = |value, flag| secs_up_to(value, MAX_PHASE_SECS, flag);
        Ok(AttackPlan {
            kind,
            url,
            target,
            connections: self
                .attack_connections
                .unwrap_or(kind.default_connections()),
            limit: self.attack_limit,
            before: secs(self.before, "--before")?,
            duration: secs(self.duration, "--duration")?,
            connect_timeout: secs(shared.connect_timeout, "--connect-timeout")?,
        })
    }
}
