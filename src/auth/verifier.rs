//! Checking a token: its size, its shape, its signature under the one configured key and
//! algorithm, then its claims and dates — each failure a [`TokenError`] with a one-line
//! reason a client can act on (the HTTP layer sends it with the 401).
//!
//! [`Verifier::verify`] is the entry point for untrusted bytes of any length: it never
//! panics, and a token longer than [`MAX_TOKEN_BYTES`] is refused before anything is decoded.
//! Dates are checked here rather than by jsonwebtoken, so that an expired token can be told
//! apart (and say by how much) and so no clock reading can panic.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::claims::Claims;
use super::keys::VerifyKey;
use super::quote::{TOKEN_QUOTE_CHARS, quote};
use super::ring_provider;

/// Longest token looked at. sselab's own tokens are a few hundred bytes; 8 KiB leaves room
/// for long pattern lists while keeping a hostile header from costing more than a glance.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Seconds a token stays good past its `exp` (and before its `nbf`) unless `--jwt-leeway`
/// says otherwise: clock skew between the machine that signed it and this one.
pub const CLOCK_LEEWAY_SECS: u64 = 30;

/// Largest `--jwt-leeway`: an hour of forgiven skew already lets an expired token read for
/// an hour; more is a token lifetime, which is the signer's `exp` to set.
pub const MAX_LEEWAY_SECS: u64 = 3600;

/// Why a token was not accepted. Its `Display` is the one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLong { bytes: usize },
    /// Not a JWT, or a JWT that says something unreadable.
    Malformed(String),
    /// Signed with an algorithm this server does not accept.
    WrongAlgorithm { got: String, accepted: Algorithm },
    /// The signature does not match the server's key.
    BadSignature,
    /// `exp` is past (with the leeway).
    Expired { seconds_ago: u64 },
    /// `nbf` is still ahead.
    NotYetValid { seconds_ahead: u64 },
}

impl TokenError {
    /// `expired` or `invalid`, for logs and for RFC 6750's `error_description`.
    pub fn is_expired(&self) -> bool {
        matches!(self, TokenError::Expired { .. })
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLong { bytes } => write!(
                f,
                "invalid token: {bytes} bytes, more than the {MAX_TOKEN_BYTES} looked at"
            ),
            TokenError::Malformed(why) => write!(f, "invalid token: {why}"),
            TokenError::WrongAlgorithm { got, accepted } => write!(
                f,
                "invalid token: signed with {got}, this server accepts {accepted:?} only"
            ),
            TokenError::BadSignature => {
                f.write_str("invalid token: the signature does not match this server's key")
            }
            TokenError::Expired { seconds_ago } => {
                write!(f, "expired token: it expired {seconds_ago} s ago")
            }
            TokenError::NotYetValid { seconds_ahead } => {
                write!(
                    f,
                    "invalid token: not valid for another {seconds_ahead} s (nbf)"
                )
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// Checks tokens against one key; cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: VerifyKey,
    validation: Validation,
    leeway_secs: u64,
}

impl Verifier {
    pub fn new(key: VerifyKey) -> Self {
        ring_provider::install();
        let mut validation = Validation::new(key.algorithm);
        // Dates are ours (see the module doc); `exp` stays required.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            key,
            validation,
            leeway_secs: CLOCK_LEEWAY_SECS,
        }
    }

    /// Forgive this many seconds of clock skew instead of [`CLOCK_LEEWAY_SECS`] (at most
    /// [`MAX_LEEWAY_SECS`]).
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway_secs = secs.min(MAX_LEEWAY_SECS);
        self
    }

    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm
    }

    /// The last whole second of the Unix clock at which a token with this `exp` is accepted:
    /// from the next one on, [`Self::verify`] refuses it.
    pub fn accepted_until(&self, exp: u64) -> u64 {
        exp.saturating_add(self.leeway_secs)
    }

    /// Check a token and give its claims. Never panics, whatever `token` holds.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, now())
    }

    /// [`Self::verify`] as if the clock read `now` (seconds since the Unix epoch).
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong { bytes: token.len() });
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key.key, &self.validation)
            .map_err(|e| self.explain(token, e.into_kind()))?
            .claims;
        if self.accepted_until(claims.exp) < now {
            return Err(TokenError::Expired {
                seconds_ago: now - claims.exp,
            });
        }
        if let Some(nbf) = claims.nbf
            && nbf > now.saturating_add(self.leeway_secs)
        {
            return Err(TokenError::NotYetValid {
                seconds_ahead: nbf - now,
            });
        }
        Ok(claims)
    }

    fn explain(&self, token: &str, kind: ErrorKind) -> TokenError {
        let malformed = |why: &str| TokenError::Malformed(why.to_string());
        match kind {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                let got = jsonwebtoken::decode_header(token)
                    .map_or_else(|_| "another algorithm".into(), |h| format!("{:?}", h.alg));
                TokenError::WrongAlgorithm {
                    got,
                    accepted: self.key.algorithm,
                }
            }
            ErrorKind::InvalidToken => {
                malformed("not a JWT (three base64url parts joined by dots)")
            }
            ErrorKind::Base64(_) => malformed("a part is not base64url"),
            ErrorKind::Utf8(_) => malformed("a part is not UTF-8"),
            ErrorKind::Json(e) => TokenError::Malformed(format!(
                "unreadable header or claims ({})",
                quote(&e.to_string(), TOKEN_QUOTE_CHARS)
            )),
            ErrorKind::MissingRequiredClaim(claim) => {
                TokenError::Malformed(format!("no `{}` claim", quote(&claim, TOKEN_QUOTE_CHARS)))
            }
            ErrorKind::InvalidAudience => {
                malformed("it has an `aud` claim, and sselab has no audience")
            }
            ErrorKind::InvalidClaimFormat(claim) => TokenError::Malformed(format!(
                "the `{}` claim is unreadable",
                quote(&claim, TOKEN_QUOTE_CHARS)
            )),
            other => TokenError::Malformed(quote(&other_reason(&other), TOKEN_QUOTE_CHARS)),
        }
    }
}

fn other_reason(kind: &ErrorKind) -> String {
    format!("{kind:?}")
}

/// Seconds since the Unix epoch; a clock before 1970 reads as 0 rather than panicking.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::auth::claims::Grants;
    use crate::auth::keys::SignKey;
    use crate::auth::signer::Signer;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> Verifier {
        Verifier::new(VerifyKey::hs256(SECRET).expect("key"))
    }

    fn signed(exp: u64, nbf: Option<u64>) -> String {
        Signer::new(SignKey::hs256(SECRET).expect("key"))
            .sign_claims(&Claims {
                exp,
                nbf,
                iat: None,
                sselab: Grants::default(),
            })
            .expect("signs")
    }

    fn b64(json: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn dates_are_checked_with_the_leeway() {
        let verifier = verifier();
        let now = 1_000_000;
        assert!(verifier.verify_at(&signed(now, None), now).is_ok());
        assert!(
            verifier
                .verify_at(&signed(now - CLOCK_LEEWAY_SECS, None), now)
                .is_ok()
        );
        assert_eq!(
            verifier.verify_at(&signed(now - 100, None), now),
            Err(TokenError::Expired { seconds_ago: 100 })
        );
        assert_eq!(
            verifier.verify_at(&signed(now + 3600, Some(now + 100)), now),
            Err(TokenError::NotYetValid { seconds_ahead: 100 })
        );
        assert!(
            verifier
                .verify_at(&signed(u64::MAX, Some(u64::MAX)), u64::MAX)
                .is_ok()
        );
        assert!(verifier.verify_at(&signed(0, None), u64::MAX).is_err());
    }

    #[test]
    fn the_leeway_is_configurable_down_to_none() {
        let strict = verifier().with_leeway(0);
        let now = 1_000_000;
        assert!(strict.verify_at(&signed(now, None), now).is_ok());
        assert_eq!(
            strict.verify_at(&signed(now - 1, None), now),
            Err(TokenError::Expired { seconds_ago: 1 })
        );
        assert_eq!(strict.accepted_until(now), now);
        assert!(
            strict
                .verify_at(&signed(now + 3600, Some(now + 1)), now)
                .is_err()
        );
        let lenient = verifier().with_leeway(u64::MAX);
        assert_eq!(lenient.leeway_secs(), MAX_LEEWAY_SECS);
        assert!(
            lenient
                .verify_at(&signed(now - MAX_LEEWAY_SECS, None), now)
                .is_ok()
        );
        assert_eq!(lenient.accepted_until(u64::MAX), u64::MAX);
    }

    #[test]
    fn each_kind_of_bad_token_gets_its_reason() {
        let verifier = verifier();
        let good = signed(u64::MAX / 2, None);
        let (head, rest) = good.split_once('.').expect("dots");
        let hs512 = format!("{}.{rest}", b64(r#"{"alg":"HS512","typ":"JWT"}"#));
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"exp":1}"#));
        let tampered = format!(
            "{head}.{}.{}",
            b64(r#"{"exp":1,"sselab":{"admin":true}}"#),
            rest.rsplit('.').next().expect("sig")
        );
        for (token, starts) in [
            ("", "invalid token: not a JWT"),
            ("a.b", "invalid token: not a JWT"),
            ("a.b.c", "invalid token: a part is not base64url"),
            (&none, "invalid token: unreadable header"),
            (
                &hs512,
                "invalid token: signed with HS512, this server accepts HS256 only",
            ),
            (&tampered, "invalid token: the signature does not match"),
        ] {
            let error = verifier.verify(token).expect_err(token).to_string();
            assert!(error.starts_with(starts), "{token:?}: {error}");
        }
        let huge = "a".repeat(1 << 20);
        assert_eq!(
            verifier.verify(&huge),
            Err(TokenError::TooLong { bytes: 1 << 20 })
        );
    }

    #[test]
    fn a_token_without_the_sselab_claim_is_invalid() {
        // Built first: it installs the crypto provider jsonwebtoken::encode below needs.
        let verifier = verifier();
        let key = SignKey::hs256(SECRET).expect("key");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": u64::MAX / 2, "sub": "someone"}),
            &key.key,
        )
        .expect("signs");
        let error = verifier.verify(&token).expect_err("no claim").to_string();
        assert!(error.contains("sselab"), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the text, an answer and never a panic; refusals are one line.
        #[test]
        fn any_text_is_answered(token in "\\PC{0,300}") {
            if let Err(error) = verifier().verify(&token) {
                prop_assert!(!error.to_string().contains('\n'));
            }
        }

        /// JWT-shaped junk: three base64url parts of arbitrary JSON-ish text.
        #[test]
        fn jwt_shaped_junk_is_answered(header in "\\PC{0,80}", claims in "\\PC{0,200}", signature in "[A-Za-z0-9_-]{0,90}") {
            let token = format!("{}.{}.{signature}", b64(&header), b64(&claims));
            prop_assert!(verifier().verify(&token).is_err());
        }
    }
}
