//! What the fuzz targets share: the oracles they judge sselab's answers by, written apart
//! from the code they check (a copy of the code under test would agree with any bug in it).
//!
//! Each target's input is plain bytes in a small format its doc describes, so the seed
//! corpora under `corpus/` can be written and read by hand.

use sselab::http::AppError;
use sselab::sse::parser::{ParsedEvent, Parser};

/// Data as EventSource hands it over: SSE has no way to carry a bare `\r`, so every line
/// break (`\r\n`, `\r`, `\n`) arrives as `\n`. Nothing else may change.
pub fn delivered(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// A refusal a client can read: one of the statuses this input may get, and a reason on one
/// line.
pub fn assert_refusal(error: &AppError, statuses: &[u16]) {
    assert!(
        statuses.contains(&error.status.as_u16()),
        "status {} is none of {statuses:?}: {}",
        error.status,
        error.message
    );
    assert_reason(&error.message);
}

/// A reason someone will read: on one line, and not empty.
pub fn assert_reason(reason: &str) {
    assert!(!reason.trim().is_empty(), "an empty reason");
    assert!(
        !reason.contains(['\r', '\n']),
        "a reason on more than one line: {reason:?}"
    );
}

/// The value of a whole number as sselab documents it (surrounding whitespace ignored, an
/// optional `+`, decimal digits, at most `u64::MAX`), computed digit by digit.
pub fn whole_number(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |value, byte| {
        let digit = u64::from(byte.checked_sub(b'0').filter(|d| *d <= 9)?);
        value.checked_mul(10)?.checked_add(digit)
    })
}

/// Parse a stream as a browser would, twice: all at once and one byte at a time (as a slow
/// network might hand it over). Both must give the same events; the parser is returned for
/// what it saw besides events (comments, the last id).
pub fn parse_stream(bytes: &[u8]) -> (Vec<ParsedEvent>, Parser) {
    let mut whole = Parser::new();
    let events = whole.feed(bytes);
    let mut trickled = Parser::new();
    let mut one_by_one = Vec::new();
    for byte in bytes {
        one_by_one.extend(trickled.feed(std::slice::from_ref(byte)));
    }
    assert_eq!(events, one_by_one, "chunking changed what was parsed");
    assert_eq!(whole.comments(), trickled.comments());
    (events, whole)
}

/// Split `input` at the first `separator`: what comes before it, and what comes after it
/// (`None` when there is no separator).
pub fn split_once(input: &[u8], separator: u8) -> (&[u8], Option<&[u8]>) {
    match input.iter().position(|&byte| byte == separator) {
        Some(at) => (&input[..at], Some(&input[at + 1..])),
        None => (input, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_as_documented() {
        assert_eq!(whole_number(" 42 "), Some(42));
        assert_eq!(whole_number("+7"), Some(7));
        assert_eq!(whole_number("007"), Some(7));
        assert_eq!(whole_number("18446744073709551615"), Some(u64::MAX));
        for refused in [
            "",
            " ",
            "+",
            "-1",
            "1.0",
            "18446744073709551616",
            "1 2",
            "x",
        ] {
            assert_eq!(whole_number(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn every_line_break_is_delivered_as_a_line_feed() {
        assert_eq!(delivered("a\r\nb\rc\nd\r\r\n"), "a\nb\nc\nd\n\n");
    }
}
