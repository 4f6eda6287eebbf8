//! Client text quoted in an error. Tokens, claims and patterns come from whoever sends a
//! request, and serde's messages echo their field names: a quote is one line (control
//! characters become `?`, so it cannot forge a log line) of bounded length (a huge input
//! makes a short error, marked `…` where it was cut).

/// Longest quote of a token's contents in a [`super::TokenError`].
pub const TOKEN_QUOTE_CHARS: usize = 160;
/// Longest quote of a pattern in a [`super::PatternError`].
pub const PATTERN_QUOTE_CHARS: usize = 64;

/// At most `max_chars` characters of `text`, on one line.
pub fn quote(text: &str, max_chars: usize) -> String {
    let mut line: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_is_one_bounded_line() {
        assert_eq!(quote("a\nb", 10), "a?b");
        assert_eq!(quote("abcdef", 3), "abc…");
        assert_eq!(quote("abc", 3), "abc");
    }
}
