//! What a token says: `exp` (required), optional `nbf`, and the `sselab` claim with the
//! channels its holder may publish to and subscribe to, and whether it may use the admin
//! endpoints.
//!
//! ```json
//! {"exp": 1767225600, "sselab": {"publish": ["topics/*"], "subscribe": ["*"], "admin": false}}
//! ```
//!
//! Other claims (`sub`, `iat`, …) are ignored. A token without the `sselab` claim is refused
//! as invalid rather than treated as granting nothing: it was most likely minted for another
//! service that shares the key, and saying so helps more than a bare 403.

use serde::{Deserialize, Deserializer, Serialize};

use super::pattern::{Channel, Kind, Pattern};
use super::quote::{TOKEN_QUOTE_CHARS, quote};

/// A token's claims, as sselab reads and writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch (RFC 7519 NumericDate).
    #[serde(deserialize_with = "numeric_date")]
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(
        default,
        deserialize_with = "optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<u64>,
    /// Issued at; written by `sselab token`, never checked.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(deserialize_with = "grants_object")]
    pub sselab: Grants,
}

/// The `sselab` claim: what the holder may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub publish: Vec<Pattern>,
    #[serde(default)]
    pub subscribe: Vec<Pattern>,
    #[serde(default)]
    pub admin: bool,
}

impl Claims {
    /// Parse a token's claims JSON (the middle part, base64-decoded). Never panics; the
    /// error is one line, the same reason [`super::Verifier::verify`] gives.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| quote(&e.to_string(), TOKEN_QUOTE_CHARS))
    }
}

impl Grants {
    pub fn may_publish(&self, channel: Channel<'_>) -> bool {
        self.publish.iter().any(|p| p.matches(channel))
    }

    pub fn may_subscribe(&self, channel: Channel<'_>) -> bool {
        self.subscribe.iter().any(|p| p.matches(channel))
    }

    /// May publish to every channel of `kind`, including ones not named yet (a new order).
    pub fn may_publish_all(&self, kind: Kind) -> bool {
        self.publish.iter().any(|p| p.covers_all(kind))
    }

    /// True when the token grants nothing at all.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && !self.admin
    }
}

/// The `sselab` claim must be an object (serde would also take a JSON array for a struct).
fn grants_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Grants, D::Error> {
    let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    serde_json::from_value(serde_json::Value::Object(object)).map_err(serde::de::Error::custom)
}

/// A NumericDate: a JSON number of seconds, possibly with a fraction, never negative.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    seconds(&number).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "a date must be whole seconds since 1970, got {number}"
        ))
    })
}

fn optional_numeric_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    numeric_date(deserializer).map(Some)
}

fn seconds(number: &serde_json::Number) -> Option<u64> {
    if let Some(whole) = number.as_u64() {
        return Some(whole);
    }
    let float = number.as_f64()?;
    // u64::MAX as f64 rounds up to 2^64, which does not fit: keep strictly below it.
    (float.is_finite() && float >= 0.0 && float < u64::MAX as f64).then_some(float as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_shape_parses() {
        let claims = Claims::parse(
            br#"{"exp": 100, "sub": "x", "sselab": {"publish": ["topics/*"], "subscribe": ["*"], "admin": true}}"#,
        )
        .expect("parses");
        assert_eq!(claims.exp, 100);
        assert!(claims.sselab.admin);
        assert!(claims.sselab.may_publish(Channel::topic("news")));
        assert!(!claims.sselab.may_publish(Channel::session("alice")));
        assert!(claims.sselab.may_subscribe(Channel::order("o1")));
    }

    #[test]
    fn dates_may_have_fractions_but_not_signs_or_text() {
        let exp =
            |json: &str| Claims::parse(format!(r#"{{"exp": {json}, "sselab": {{}}}}"#).as_bytes());
        assert_eq!(exp("1.9").expect("fraction").exp, 1);
        assert_eq!(exp("1e3").expect("exponent").exp, 1000);
        for bad in ["-1", "\"1\"", "1e300", "null", "true"] {
            assert!(exp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_pieces_are_errors_and_lists_default_to_empty() {
        assert!(Claims::parse(br#"{"sselab": {}}"#).is_err(), "no exp");
        assert!(Claims::parse(br#"{"exp": 1}"#).is_err(), "no sselab claim");
        assert!(
            Claims::parse(br#"{"exp": 1, "sselab": {"publsh": []}}"#).is_err(),
            "typo"
        );
        assert!(Claims::parse(br#"{"exp": 1, "sselab": {"publish": ["nope"]}}"#).is_err());
        let empty = Claims::parse(br#"{"exp": 1, "sselab": {}}"#).expect("parses");
        assert!(empty.sselab.is_empty());
        for garbage in [
            &b""[..],
            b"{",
            b"[]",
            b"\xff\xfe",
            b"{\"exp\":1,\"sselab\":[]}",
        ] {
            assert!(Claims::parse(garbage).is_err());
        }
    }

    /// Found by the `jwt` fuzz target: serde echoes an unknown field's name, and `\n` in a
    /// JSON key is a line break in the reason.
    #[test]
    fn a_reason_echoing_a_field_name_stays_on_one_line() {
        let reason = Claims::parse(br#"{"exp":1,"sselab":{"publ\nish":[],"x\r":1}}"#)
            .expect_err("unknown field");
        assert!(reason.contains("unknown field"), "{reason}");
        assert!(!reason.contains(['\r', '\n']), "{reason:?}");
    }

    #[test]
    fn writing_and_reading_agree() {
        let claims = Claims {
            exp: 42,
            nbf: None,
            iat: Some(40),
            sselab: Grants {
                publish: vec![Pattern::parse("topics/news").expect("pattern")],
                subscribe: vec![Pattern::Everything],
                admin: false,
            },
        };
        let json = serde_json::to_vec(&claims).expect("json");
        let back = Claims::parse(&json).expect("parses");
        assert_eq!(back.sselab, claims.sselab);
        assert_eq!((back.exp, back.iat), (42, None), "iat is written, not read");
    }
}
