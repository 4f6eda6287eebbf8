//! The authorization flags: the key `sselab serve` checks tokens with, the topics anyone may
//! read, the explicit opt-out for non-loopback listeners, and `sselab token`'s own flags.
//!
//! Secrets are read from the environment as readily as from flags (a flag shows in `ps`),
//! and their values are never shown by `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::LogArgs;
use crate::auth::{CLOCK_LEEWAY_SECS, Kind, MAX_LEEWAY_SECS, Pattern, parse_ttl};

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Check tokens signed with this HS256 shared secret (at least 32 bytes); turns auth on.
    /// Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "SSELAB_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret: Option<String>,

    /// Check tokens against this PEM public key: RSA (RS256) or P-256 (ES256); turns auth on.
    #[arg(long, value_name = "FILE", env = "SSELAB_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// With auth on, anyone may subscribe to topics matching this pattern, without a token
    /// (repeatable, or comma-separated): `news`, `public.*`, `*` (or `topics/news`, …).
    #[arg(
        long = "public-topics",
        value_name = "PATTERN",
        env = "SSELAB_PUBLIC_TOPICS",
        value_delimiter = ',',
        value_parser = public_topic
    )]
    pub public_topics: Vec<Pattern>,

    /// Seconds a token stays good past its `exp` (clock skew between signer and server);
    /// a stream opened with a token ends when it stops being good. 0 = exactly at `exp`.
    #[arg(long, value_name = "SECS", default_value_t = CLOCK_LEEWAY_SECS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_LEEWAY_SECS),
          env = "SSELAB_JWT_LEEWAY")]
    pub jwt_leeway: u64,

    /// Serve without authorization even when a listener is not on loopback (by default
    /// sselab then refuses to start without --jwt-secret or --jwt-public-key).
    #[arg(
        long,
        env = "SSELAB_ALLOW_ANONYMOUS",
        conflicts_with_all = ["jwt_secret", "jwt_public_key"]
    )]
    pub allow_anonymous: bool,
}

impl Default for AuthArgs {
    /// No key, as with no flags: auth off, today's leeway.
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_public_key: None,
            public_topics: Vec::new(),
            jwt_leeway: CLOCK_LEEWAY_SECS,
            allow_anonymous: false,
        }
    }
}

/// `--public-topics`: a topic pattern with or without its `topics/`.
fn public_topic(text: &str) -> Result<Pattern, String> {
    let full = if text.contains('/') {
        text.to_string()
    } else if text == "*" {
        "topics/*".to_string()
    } else {
        format!("topics/{text}")
    };
    let pattern = Pattern::parse(&full).map_err(|e| e.to_string())?;
    match pattern.kind() {
        Some(Kind::Topic) => Ok(pattern),
        _ => Err(format!(
            "`{text}` is not a topic pattern: --public-topics opens topics only"
        )),
    }
}

/// `sselab token`: print a signed token.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// A channel the token may publish to (repeatable): `topics/news`, `topics/*`,
    /// `sessions/alice`, `orders/*` (needed to create orders), `*`.
    #[arg(long, value_name = "PATTERN")]
    pub publish: Vec<Pattern>,

    /// A channel the token may subscribe to (repeatable), written like --publish.
    #[arg(long, value_name = "PATTERN")]
    pub subscribe: Vec<Pattern>,

    /// The token may use the admin endpoints (list, inspect, delete sessions; broadcast;
    /// list topics).
    #[arg(long)]
    pub admin: bool,

    /// How long the token is good for: 90s, 15m, 1h, 1h30m, 7d (at most 366d).
    #[arg(long, value_name = "DURATION", default_value = "1h",
          value_parser = parse_ttl, env = "SSELAB_TOKEN_TTL")]
    pub ttl: Duration,

    /// Sign with this HS256 secret: the server's --jwt-secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "SSELAB_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_private_key"
    )]
    pub jwt_secret: Option<String>,

    /// Sign with this PEM private key (PKCS#8 RSA or P-256, or PKCS#1 RSA): the private half
    /// of the server's --jwt-public-key.
    #[arg(long, value_name = "FILE", env = "SSELAB_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_topics_take_bare_names_and_refuse_other_kinds() {
        let shown = |text: &str| public_topic(text).map(|p| p.to_string());
        assert_eq!(shown("news"), Ok("topics/news".into()));
        assert_eq!(shown("public.*"), Ok("topics/public.*".into()));
        assert_eq!(shown("*"), Ok("topics/*".into()));
        assert_eq!(shown("topics/a"), Ok("topics/a".into()));
        assert!(shown("sessions/alice").is_err());
        assert!(shown("orders/*").is_err());
        assert!(shown("a b").is_err());
    }
}
