//! `sselab bench --attack`'s flags, and the checks that turn them into a plan. An attack only
//! ever runs against this machine: a non-loopback target is refused whatever else is given.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use http::Uri;

use super::super::args::BenchArgs;
use crate::client::{Proto, Target};

/// The attacks `--attack` can run.
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
#[command(next_help_heading = "Attack mode (loopback only)")]
pub struct AttackArgs {
    /// Attack the server behind --url while a control client opens a fresh connection to
    /// --url and times its first event, alone for --before seconds, then during the attack
    /// for --duration seconds.
    #[arg(id = "attack", long = "attack", value_name = "KIND", value_enum,
          conflicts_with_all = ["reconnect", "publish_url"])]
    pub kind: Option<AttackKind>,

    /// Attacking connections at once (rapid-reset and continuation: 4, slowloris: 1000).
    #[arg(long, value_name = "N", requires = "attack",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub attack_connections: Option<u64>,

    /// The attack stops by itself after this many resets (rapid-reset) or connections opened
    /// (slowloris, continuation), if --duration has not ended it first.
    #[arg(long, value_name = "N", default_value_t = 100_000_000, requires = "attack",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub attack_limit: u64,

    /// Seconds the control client runs alone first, for the numbers to compare against.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, requires = "attack")]
    pub before: f64,
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

impl BenchArgs {
    /// Check the flags of an attack run. The target must be on loopback: `--allow-remote`
    /// does not apply to attacks.
    pub(super) fn attack_plan(&self) -> anyhow::Result<AttackPlan> {
        let kind = self
            .attack
            .kind
            .context("no --attack was given: use bench::run for a load test")?;
        let url: Uri = self
            .url
            .replace("{n}", "0")
            .parse()
            .with_context(|| format!("--url {} is not a URL", self.url))?;
        let https = url.scheme_str() == Some("https");
        let proto = self.proto.unwrap_or(match (kind.is_http2(), https) {
            (true, true) => Proto::H2,
            (true, false) => Proto::H2c,
            (false, _) => Proto::H1,
        });
        match (kind.is_http2(), proto) {
            (_, Proto::H3) => bail!(
                "--attack {} has no HTTP/3 form here: use --proto h1, h2 or h2c",
                kind.name()
            ),
            (true, Proto::H1) => bail!(
                "--attack {} is an HTTP/2 attack: use --proto h2 (https) or h2c",
                kind.name()
            ),
            (false, Proto::H2 | Proto::H2c) => {
                bail!("--attack slowloris trickles HTTP/1.1 headers: use --proto h1")
            }
            _ => {}
        }
        let target = Target::new(&url, proto, self.cacert.as_deref(), self.insecure)?;
        if !target.addr.ip().is_loopback() {
            bail!(
                "--attack only runs against this machine: {} resolves to {}, outside loopback \
                 (--allow-remote does not apply to attacks)",
                self.url,
                target.addr.ip()
            );
        }
        let secs = |value: f64, flag: &str| {
            if value.is_finite() && (0.0..=3600.0).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                bail!(
                    "{flag} must be a number of seconds from 0 to 3600 in attack mode, got {value}"
                )
            }
        };
        Ok(AttackPlan {
            kind,
            url,
            target,
            connections: self
                .attack
                .attack_connections
                .unwrap_or(kind.default_connections()),
            limit: self.attack.attack_limit,
            before: secs(self.attack.before, "--before")?,
            duration: secs(self.duration, "--duration")?,
            connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
        })
    }
}
