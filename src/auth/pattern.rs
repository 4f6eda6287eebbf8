//! Channels and the patterns a token grants: `topics/news`, `topics/*`, `topics/news.*`,
//! `sessions/alice`, `orders/*`, `*`.
//!
//! A channel is what one request touches: a topic, a session or an order, by name. A pattern
//! is written the same way with `*` standing for "any name" (`topics/*`), "any name starting
//! with" (`topics/news.*`) or, alone, every channel. Parsing is strict — an unknown kind or a
//! character a channel name cannot hold is an error naming it — so a typo in a token or in
//! `--public-topics` is reported instead of silently granting nothing.

use std::fmt;
use std::str::FromStr;

use super::quote::{PATTERN_QUOTE_CHARS, quote};

/// Longest channel name, as the HTTP layer's client ids.
pub const MAX_NAME_LEN: usize = 128;

/// What kind of channel a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Topic,
    Session,
    Order,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Topic, Kind::Session, Kind::Order];

    /// The word before the `/`: `topics`, `sessions`, `orders`.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Topic => "topics",
            Kind::Session => "sessions",
            Kind::Order => "orders",
        }
    }

    fn from_prefix(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.prefix() == text)
    }
}

/// One topic, session or order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel<'a> {
    pub kind: Kind,
    pub name: &'a str,
}

impl<'a> Channel<'a> {
    pub fn topic(name: &'a str) -> Self {
        Self {
            kind: Kind::Topic,
            name,
        }
    }

    pub fn session(name: &'a str) -> Self {
        Self {
            kind: Kind::Session,
            name,
        }
    }

    pub fn order(name: &'a str) -> Self {
        Self {
            kind: Kind::Order,
            name,
        }
    }
}

impl fmt::Display for Channel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.prefix(), self.name)
    }
}

/// A set of channels, as written in a token's `publish`/`subscribe` lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `*`: every channel of every kind.
    Everything,
    /// `topics/*`: every channel of one kind.
    AllOf(Kind),
    /// `topics/news.*`: the names of one kind that start with a prefix.
    Prefix(Kind, String),
    /// `topics/news`: one channel.
    Exact(Kind, String),
}

/// Why a pattern does not parse; one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    /// Parse `*`, `KIND/*`, `KIND/PREFIX*` or `KIND/NAME`, where KIND is `topics`,
    /// `sessions` or `orders` and a name is 1–128 characters of `A-Z a-z 0-9 . _ -`.
    /// Never panics, whatever the text.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text == "*" {
            return Ok(Pattern::Everything);
        }
        let shown = quote(text, PATTERN_QUOTE_CHARS);
        let Some((prefix, rest)) = text.split_once('/') else {
            return Err(PatternError(format!(
                "`{shown}` is not a channel pattern: write `*`, `topics/NAME`, `topics/*`, \
                 `sessions/ID` or `orders/ID`"
            )));
        };
        let kind = Kind::from_prefix(prefix).ok_or_else(|| {
            PatternError(format!(
                "`{shown}`: `{}` is not a channel kind (topics, sessions, orders)",
                quote(prefix, PATTERN_QUOTE_CHARS)
            ))
        })?;
        if rest == "*" {
            return Ok(Pattern::AllOf(kind));
        }
        let (name, is_prefix) = match rest.strip_suffix('*') {
            Some(start) => (start, true),
            None => (rest, false),
        };
        if !valid_name(name) {
            return Err(PatternError(format!(
                "`{shown}`: a name is 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ - \
                 (with `*` only at the end)"
            )));
        }
        Ok(if is_prefix {
            Pattern::Prefix(kind, name.to_string())
        } else {
            Pattern::Exact(kind, name.to_string())
        })
    }

    /// Does this pattern include the channel?
    pub fn matches(&self, channel: Channel<'_>) -> bool {
        match self {
            Pattern::Everything => true,
            Pattern::AllOf(kind) => *kind == channel.kind,
            Pattern::Prefix(kind, start) => {
                *kind == channel.kind && channel.name.starts_with(start.as_str())
            }
            Pattern::Exact(kind, name) => *kind == channel.kind && channel.name == name,
        }
    }

    /// Does this pattern include every channel of `kind`, even names not chosen yet?
    pub fn covers_all(&self, kind: Kind) -> bool {
        match self {
            Pattern::Everything => true,
            Pattern::AllOf(of) => *of == kind,
            Pattern::Prefix(..) | Pattern::Exact(..) => false,
        }
    }

    /// The kind this pattern is limited to; `None` for `*`.
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Pattern::Everything => None,
            Pattern::AllOf(kind) | Pattern::Prefix(kind, _) | Pattern::Exact(kind, _) => {
                Some(*kind)
            }
        }
    }
}

/// A channel name: what the HTTP layer accepts as an id, so a pattern can name any of them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Pattern::parse(text)
    }
}

impl TryFrom<String> for Pattern {
    type Error = PatternError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Pattern::parse(&text)
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> Self {
        pattern.to_string()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Everything => f.write_str("*"),
            Pattern::AllOf(kind) => write!(f, "{}/*", kind.prefix()),
            Pattern::Prefix(kind, start) => write!(f, "{}/{start}*", kind.prefix()),
            Pattern::Exact(kind, name) => write!(f, "{}/{name}", kind.prefix()),
        }
    }
}

impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Pattern {
        Pattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_form_parses_and_prints_back() {
        for text in [
            "*",
            "topics/*",
            "topics/news",
            "topics/news.*",
            "sessions/alice",
            "orders/*",
            "orders/o-1_2.3",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn matching_follows_kind_and_name() {
        let news = Channel::topic("news");
        let sport = Channel::topic("news.sport");
        let alice = Channel::session("alice");
        assert!(parse("*").matches(news) && parse("*").matches(alice));
        assert!(parse("topics/*").matches(news) && !parse("topics/*").matches(alice));
        assert!(parse("topics/news").matches(news) && !parse("topics/news").matches(sport));
        assert!(parse("topics/news.*").matches(sport) && !parse("topics/news.*").matches(news));
        assert!(!parse("sessions/news").matches(news), "kinds never mix");
        assert!(parse("sessions/alice").matches(alice));
    }

    #[test]
    fn covering_all_of_a_kind_needs_a_whole_kind() {
        assert!(parse("*").covers_all(Kind::Order));
        assert!(parse("orders/*").covers_all(Kind::Order));
        assert!(!parse("orders/a*").covers_all(Kind::Order));
        assert!(!parse("topics/*").covers_all(Kind::Order));
    }

    #[test]
    fn mistakes_are_refused_with_a_short_reason() {
        for (text, says) in [
            ("", "not a channel pattern"),
            ("news", "not a channel pattern"),
            ("topic/news", "not a channel kind"),
            ("topics/", "a name is"),
            ("topics/a b", "a name is"),
            ("topics/*x", "a name is"),
            ("topics/a*b", "a name is"),
            ("topics/**", "a name is"),
            ("*/news", "not a channel kind"),
            ("topics/news/extra", "a name is"),
        ] {
            let error = Pattern::parse(text).expect_err(text).to_string();
            assert!(error.contains(says), "{text:?}: {error}");
        }
        let huge = format!("topics/{}", "x".repeat(1 << 20));
        let error = Pattern::parse(&huge).expect_err("too long").to_string();
        assert!(error.len() < 300, "{} bytes", error.len());
    }

    #[test]
    fn json_lists_of_patterns_round_trip() {
        let patterns: Vec<Pattern> =
            serde_json::from_str(r#"["topics/*", "sessions/alice", "*"]"#).expect("parses");
        let back = serde_json::to_string(&patterns).expect("prints");
        assert_eq!(back, r#"["topics/*","sessions/alice","*"]"#);
        assert!(serde_json::from_str::<Vec<Pattern>>(r#"["topic/x"]"#).is_err());
    }
}
