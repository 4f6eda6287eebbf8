//! Minting tokens, for `sselab token` and for tests: grants plus a lifetime, signed with the
//! key the server verifies with (the same HS256 secret, or the private half of its key).

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};

use super::claims::{Claims, Grants};
use super::keys::SignKey;
use super::ring_provider;
use super::verifier::now;

/// Longest lifetime `sselab token` signs: a token cannot be revoked before it expires
/// (short of changing the key), so a year is already generous.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct Signer {
    key: SignKey,
}

impl Signer {
    pub fn new(key: SignKey) -> Self {
        ring_provider::install();
        Self { key }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm
    }

    /// A token granting `grants` from now until `now + ttl`.
    pub fn sign(&self, grants: Grants, ttl: Duration) -> Result<String, String> {
        let issued = now();
        self.sign_claims(&Claims {
            exp: issued.saturating_add(ttl.as_secs()),
            nbf: None,
            iat: Some(issued),
            sselab: grants,
        })
    }

    /// A token with exactly these claims (tests use it for expired and future tokens).
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(self.key.algorithm), claims, &self.key.key)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }
}

/// A lifetime written the way people say it: `90s`, `15m`, `1h`, `1h30m`, `7d`, `2w`; a bare
/// number is seconds. Between 1 s and [`MAX_TTL`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "`{text}` is not a lifetime like 90s, 15m, 1h, 1h30m, 7d (a bare number is seconds)"
        )
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "" if digits == text.len() => 1,
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
    }
    let ttl = Duration::from_secs(total);
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(format!(
            "`{text}` is outside 1s to {}d: a token cannot be revoked, so it should not outlive its use",
            MAX_TTL.as_secs() / 86_400
        ));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_like_people_write_them() {
        for (text, seconds) in [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("2 ", 2),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1day", 86_400),
        ] {
            assert_eq!(parse_ttl(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
    }

    #[test]
    fn nonsense_and_extremes_are_refused() {
        for text in [
            "",
            "h",
            "1x",
            "1.5h",
            "-1h",
            "1h 30m",
            "0",
            "0s",
            "367d",
            "99999999999999999999s",
            "1h1",
        ] {
            assert!(parse_ttl(text).is_err(), "{text:?}");
        }
    }
}
