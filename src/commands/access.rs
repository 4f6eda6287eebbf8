//! From the auth flags to the server's [`Access`] rule, and the safe default: a server with
//! no key is open only while every listener is on loopback. Bound to any other address
//! (`0.0.0.0` and `::` included), it refuses to start — naming the listener — unless
//! `--allow-anonymous` says the operator means it.
//!
//! `--metrics` does not count: it serves only `/metrics`, which is open with or without a
//! key, so a key would protect nothing there.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::auth::{Access, OpenBecause, SignKey, Signer, Verifier, VerifyKey};
use crate::cli::{AuthArgs, TokenArgs};
use crate::server::Bind;

/// The rule and the banner line that says which one is in force.
#[derive(Debug, Clone)]
pub struct AccessPlan {
    pub access: Access,
    pub banner: String,
}

/// `listeners`: each serving listener's flag and address.
pub fn plan(args: &AuthArgs, listeners: &[(&str, Bind)]) -> anyhow::Result<AccessPlan> {
    if let Some((verifier, source)) = verifier(args)? {
        let mut banner = format!("auth: on ({:?} from {source})", verifier.algorithm());
        if !args.public_topics.is_empty() {
            let public: Vec<String> = args.public_topics.iter().map(|p| p.to_string()).collect();
            banner.push_str(&format!("; public: {}", public.join(", ")));
        }
        return Ok(AccessPlan {
            access: Access::checked(verifier, args.public_topics.clone()),
            banner,
        });
    }
    if !args.public_topics.is_empty() {
        tracing::warn!("--public-topics has no effect: auth is off, every topic is public");
    }
    let exposed = listeners.iter().find_map(|(flag, bind)| match bind {
        Bind::At(addr) if !is_loopback(*addr) => Some((flag, addr)),
        _ => None,
    });
    let because = if args.allow_anonymous {
        OpenBecause::AllowAnonymous
    } else if let Some((flag, addr)) = exposed {
        anyhow::bail!(
            "refusing to start: {flag} {addr} is not a loopback address and no key is set; \
             give --jwt-secret (or SSELAB_JWT_SECRET) or --jwt-public-key FILE, or \
             --allow-anonymous to let anyone who can reach it publish and administer"
        )
    } else {
        OpenBecause::LoopbackOnly
    };
    let banner = match because {
        OpenBecause::LoopbackOnly => "auth: off (loopback only)",
        OpenBecause::AllowAnonymous => "auth: off (--allow-anonymous)",
    };
    Ok(AccessPlan {
        access: Access::Open(because),
        banner: banner.to_string(),
    })
}

fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The verifier the flags ask for, and where its key came from (for the banner).
fn verifier(args: &AuthArgs) -> anyhow::Result<Option<(Verifier, String)>> {
    let key = match (&args.jwt_secret, &args.jwt_public_key) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give --jwt-secret or --jwt-public-key, not both")
        }
        (Some(secret), None) => (
            VerifyKey::hs256(secret).map_err(|e| anyhow::anyhow!("--jwt-secret: {e}"))?,
            "--jwt-secret".to_string(),
        ),
        (None, Some(path)) => {
            let pem = read_key(path, "--jwt-public-key")?;
            let key = VerifyKey::from_public_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--jwt-public-key {}: {e}", path.display()))?;
            (key, format!("--jwt-public-key {}", path.display()))
        }
        (None, None) => return Ok(None),
    };
    Ok(Some((
        Verifier::new(key.0).with_leeway(args.jwt_leeway),
        key.1,
    )))
}

/// The signer `sselab token` asks for.
pub fn signer(args: &TokenArgs) -> anyhow::Result<Signer> {
    let key = match (&args.jwt_secret, &args.jwt_private_key) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give --jwt-secret or --jwt-private-key, not both")
        }
        (Some(secret), None) => {
            SignKey::hs256(secret).map_err(|e| anyhow::anyhow!("--jwt-secret: {e}"))?
        }
        (None, Some(path)) => {
            let pem = read_key(path, "--jwt-private-key")?;
            SignKey::from_private_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--jwt-private-key {}: {e}", path.display()))?
        }
        (None, None) => anyhow::bail!(
            "no key to sign with: give --jwt-secret (or SSELAB_JWT_SECRET), the server's secret, \
             or --jwt-private-key FILE, the private half of its --jwt-public-key"
        ),
    };
    Ok(Signer::new(key))
}

/// A key file, refusing anything too large to be one (a key is a few KiB at most).
fn read_key(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
    let size = std::fs::metadata(path)
        .with_context(|| format!("{flag} {}: cannot read it", path.display()))?
        .len();
    if size > MAX_KEY_FILE_BYTES {
        anyhow::bail!(
            "{flag} {}: {size} bytes is too large for a PEM key",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Bind {
        Bind::At(text.parse().expect("address"))
    }

    fn open_reason(args: &AuthArgs, listeners: &[(&str, Bind)]) -> Result<String, String> {
        plan(args, listeners)
            .map(|plan| plan.banner)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn loopback_without_a_key_is_open_and_says_so() {
        let args = AuthArgs::default();
        let listeners = [
            ("--http", at("127.0.0.1:8080")),
            ("--https", at("[::1]:8443")),
            ("--https-h1", Bind::Off),
        ];
        assert_eq!(
            open_reason(&args, &listeners),
            Ok("auth: off (loopback only)".into())
        );
        let mapped = [("--http", at("[::ffff:127.0.0.1]:80"))];
        assert!(open_reason(&args, &mapped).is_ok(), "IPv4-mapped loopback");
    }

    #[test]
    fn any_other_address_without_a_key_is_refused_by_name() {
        let args = AuthArgs::default();
        for addr in ["0.0.0.0:8443", "[::]:8443", "192.0.2.7:8443"] {
            let listeners = [("--http", at("127.0.0.1:8080")), ("--https", at(addr))];
            let error = open_reason(&args, &listeners).expect_err(addr);
            assert!(error.contains("--https") && error.contains(addr), "{error}");
            assert!(!error.contains('\n'), "one line: {error}");
        }
        let anonymous = AuthArgs {
            allow_anonymous: true,
            ..AuthArgs::default()
        };
        let listeners = [("--http", at("0.0.0.0:8080"))];
        assert_eq!(
            open_reason(&anonymous, &listeners),
            Ok("auth: off (--allow-anonymous)".into())
        );
    }

    #[test]
    fn a_key_turns_auth_on_anywhere() {
        let args = AuthArgs {
            jwt_secret: Some("s".repeat(32)),
            public_topics: vec!["topics/news".parse().expect("pattern")],
            ..AuthArgs::default()
        };
        let banner = open_reason(&args, &[("--http", at("0.0.0.0:8080"))]).expect("starts");
        assert_eq!(
            banner,
            "auth: on (HS256 from --jwt-secret); public: topics/news"
        );
        let short = AuthArgs {
            jwt_secret: Some("short".into()),
            ..AuthArgs::default()
        };
        let error = open_reason(&short, &[]).expect_err("short secret");
        assert!(error.starts_with("--jwt-secret: "), "{error}");
    }
}
