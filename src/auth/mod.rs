//! Authorization by JWT, as SSE hubs do it: a token says which channels its holder may
//! publish to and subscribe to, and whether it may use the admin endpoints.
//!
//! This layer is pure token logic — channel patterns, claims, keys, checking and signing,
//! and the rule that decides a request — with no HTTP in it: the HTTP layer finds the token
//! (header, cookie, query) and turns a [`Denied`] into 401 or 403; the command layer loads
//! keys from the flags and decides whether a server may run without one.
//!
//! Entry points for untrusted input (each never panics, whatever the bytes): [`Verifier::verify`]
//! for a whole token, [`Claims::parse`] for a claims JSON, [`Pattern::parse`] for a pattern.
//!
//! Cryptography is ring's, plugged into jsonwebtoken by [`ring_provider`]. Only HS256, RS256
//! and ES256 are accepted, and only the one algorithm of the configured key.

mod access;
mod claims;
mod keys;
mod pattern;
mod quote;
pub mod ring_provider;
mod signer;
mod verifier;

pub use access::{Access, Checked, Denied, Expiry, Grant, Need, OpenBecause, grants};
pub use claims::{Claims, Grants};
pub use jsonwebtoken::Algorithm;
pub use keys::{MIN_SECRET_BYTES, SignKey, VerifyKey};
pub use pattern::{Channel, Kind, MAX_NAME_LEN, Pattern, PatternError, valid_name};
pub use signer::{MAX_TTL, Signer, parse_ttl};
pub use verifier::{
    CLOCK_LEEWAY_SECS, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES, TokenError, Verifier, now,
};
