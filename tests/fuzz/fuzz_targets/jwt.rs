//! Tokens and what they grant, from any bytes: `Verifier::verify_at` (a whole token, with
//! an HS256 key), `Claims::parse` (a token's claims) and `Pattern::parse` (a channel pattern).
//! Nothing panics, and a refusal is one line. A token the fuzzer could not sign is refused;
//! a token this target signs over any header and claims the fuzzer wrote is accepted only
//! with what those claims say (`Claims::parse` of the same bytes), an `exp` not past and an
//! `nbf` not ahead (each with the leeway); accepted claims and patterns write out and read
//! back the same.
//!
//! Input: one flags byte, then text. Bits 0–1 of the flags: 0, the text is a token; 1, the
//! text is a header JSON, a `\n`, and a claims JSON, signed here with the server's key;
//! 2, a pattern; 3, a claims JSON. Seeds read like `2topics/news.*` or
//! `1{"alg":"HS256"}\n{"exp":1800000000,"sselab":{"admin":true}}`.

#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use sselab::auth::{
    CLOCK_LEEWAY_SECS, Channel, Claims, Kind, Pattern, TokenError, Verifier, VerifyKey,
};
use sselab_fuzz::{assert_reason, split_once};

/// The server's HS256 secret (32 bytes, the least sselab takes).
const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-sec";
/// The clock the tokens are checked at (November 2026), so dates decide the same each run.
const NOW: u64 = 1_795_000_000;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, text)) = input.split_first() else {
        return;
    };
    match flags & 0b11 {
        0 => {
            let token = String::from_utf8_lossy(text);
            check_refusal(verifier().verify_at(&token, NOW));
        }
        1 => {
            let (header, claims) = split_once(text, b'\n');
            check_signed(header, claims.unwrap_or_default());
        }
        2 => check_pattern(&String::from_utf8_lossy(text)),
        _ => match Claims::parse(text) {
            Ok(claims) => check_writes_back(&claims),
            Err(reason) => assert_reason(&reason),
        },
    }
});

/// The server's verifier, made once (as the server does).
fn verifier() -> &'static Verifier {
    static VERIFIER: LazyLock<Verifier> =
        LazyLock::new(|| Verifier::new(VerifyKey::hs256(SECRET).expect("a 32-byte secret")));
    &VERIFIER
}

/// Without the key, any text is refused with a reason.
fn check_refusal(answer: Result<Claims, TokenError>) {
    match answer {
        Ok(claims) => panic!("an unsigned token was accepted: {claims:?}"),
        Err(error) => assert_reason(&error.to_string()),
    }
}

/// A token signed with the server's key over the fuzzer's header and claims.
fn check_signed(header: &[u8], claims_json: &[u8]) {
    let signed_part = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let signature = ring::hmac::sign(&key, signed_part.as_bytes());
    let token = format!(
        "{signed_part}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    match verifier().verify_at(&token, NOW) {
        Err(error) => assert_reason(&error.to_string()),
        Ok(claims) => {
            let read = Claims::parse(claims_json).expect("accepted claims that do not parse");
            assert_eq!(
                claims, read,
                "the token's claims are not what its JSON says"
            );
            assert!(
                claims.exp.saturating_add(CLOCK_LEEWAY_SECS) >= NOW,
                "accepted a token that expired at {}",
                claims.exp
            );
            if let Some(nbf) = claims.nbf {
                assert!(
                    nbf <= NOW + CLOCK_LEEWAY_SECS,
                    "accepted a token not valid before {nbf}"
                );
            }
            check_writes_back(&claims);
        }
    }
}

/// Claims written as JSON read back as the same grants and dates (`iat` is written only).
fn check_writes_back(claims: &Claims) {
    let json = serde_json::to_vec(claims).expect("claims serialize");
    let back = Claims::parse(&json).expect("written claims parse");
    assert_eq!((back.exp, back.nbf), (claims.exp, claims.nbf));
    assert_eq!(back.sselab, claims.sselab);
}

/// A pattern parses to something that prints back as itself and matches what it names.
fn check_pattern(text: &str) {
    match Pattern::parse(text) {
        Err(error) => assert_reason(&error.to_string()),
        Ok(pattern) => {
            let printed = pattern.to_string();
            assert_eq!(printed, text, "the pattern prints as something else");
            assert_eq!(Pattern::parse(&printed).as_ref(), Ok(&pattern));
            match &pattern {
                Pattern::Everything => assert!(Kind::ALL.iter().all(|k| pattern.covers_all(*k))),
                Pattern::AllOf(kind) => assert!(pattern.covers_all(*kind)),
                Pattern::Prefix(kind, start) | Pattern::Exact(kind, start) => {
                    let channel = Channel {
                        kind: *kind,
                        name: start,
                    };
                    assert!(
                        pattern.matches(channel),
                        "{pattern} does not match {channel}"
                    );
                    assert!(!pattern.covers_all(*kind));
                }
            }
        }
    }
}
