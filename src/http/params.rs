//! Reading query values and headers into numbers, with a one-line 400 for anything else.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use super::AppError;
use super::streaming::StreamEnds;
use crate::sse::{EventName, MAX_RETRY_MS, MAX_TIMEOUT_SECS, nonzero_secs};

/// A whole number from the query, `None` when absent, 400 when not a number in `0..=max`.
pub fn bounded_u64(
    query: &HashMap<String, String>,
    name: &str,
    max: u64,
    unit: &str,
) -> Result<Option<u64>, AppError> {
    let Some(text) = query.get(name) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(value) if value <= max => Ok(Some(value)),
        _ => Err(AppError::bad_request(format!(
            "{name} must be a whole number of {unit} from 0 to {max}, got {text:?}"
        ))),
    }
}

/// A stream timeout the client asked for with `?timeout=SECS`: `Some(None)` for 0 (never),
/// `None` when it did not ask (the caller's default applies).
pub fn requested_timeout(
    query: &HashMap<String, String>,
) -> Result<Option<Option<Duration>>, AppError> {
    let secs = bounded_u64(query, "timeout", MAX_TIMEOUT_SECS, "seconds")?;
    Ok(secs.map(nonzero_secs))
}

/// A `retry:` the client asked for with `?retry=MS`, sent as asked (no jitter).
pub fn requested_retry(query: &HashMap<String, String>) -> Result<Option<u64>, AppError> {
    bounded_u64(query, "retry", MAX_RETRY_MS, "milliseconds")
}

/// Where a stream resumes: the number of the last event the client saw, from the
/// `Last-Event-ID` header or, when that is absent, the `lastEventId` query parameter.
///
/// The query form exists because an `EventSource` cannot set headers: a tab that takes over a
/// shared stream (sselab.js) opens it with `?lastEventId=n`. The header wins, since the
/// browser sends it on its own reconnects and it is newer than the URL it reconnects to. A
/// value that is not a whole number is a one-line 400 naming which of the two it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LastEventId(pub Option<u64>);

/// The query parameter that stands in for the `Last-Event-ID` header.
pub const LAST_EVENT_ID_QUERY: &str = "lastEventId";

impl LastEventId {
    /// Resolve the position from a request's headers and URI, by the rule above: a
    /// non-blank `Last-Event-ID` header, else a non-blank `lastEventId` query parameter, else
    /// none. The extractor is this and nothing more; it is public so the fuzz targets
    /// (`tests/fuzz`) can call it with any header bytes and query.
    pub fn from_parts(headers: &HeaderMap, uri: &Uri) -> Result<Self, AppError> {
        match last_event_text(headers, uri) {
            Some((from, text)) => whole_number(from, &text).map(|id| Self(Some(id))),
            None => Ok(Self(None)),
        }
    }
}

/// The client's position as text, by [`LastEventId`]'s rule (the header, else the query),
/// with the name of the one it came from; `None` when both are absent or blank.
pub fn last_event_text(headers: &HeaderMap, uri: &Uri) -> Option<(&'static str, String)> {
    if let Some(value) = headers.get("last-event-id") {
        let text = String::from_utf8_lossy(value.as_bytes());
        // EventSource sends an empty value when the last event had `id:` with nothing
        // after: no position, so the query may still give one.
        if !text.trim().is_empty() {
            return Some(("Last-Event-ID", text.into_owned()));
        }
    }
    match query_of(uri).get(LAST_EVENT_ID_QUERY) {
        Some(text) if !text.trim().is_empty() => Some((LAST_EVENT_ID_QUERY, text.clone())),
        _ => None,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        Self::from_parts(&parts.headers, &parts.uri)
    }
}

/// The query's values by name (the last of a repeated one); empty when there is none.
fn query_of(uri: &Uri) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|Query(query)| query)
        .unwrap_or_default()
}

fn whole_number(name: &str, text: &str) -> Result<u64, AppError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| AppError::bad_request(format!("{name} must be a whole number, got {text:?}")))
}

/// `?timeout=SECS` (0 = never, the default for a subscription) and `?retry=MS`: when a
/// subscription's stream ends by itself, and the `retry:` it asks the browser to wait.
pub fn stream_ends(uri: &Uri) -> Result<StreamEnds, AppError> {
    let query = query_of(uri);
    Ok(StreamEnds {
        timeout: requested_timeout(&query)?.flatten(),
        retry_ms: requested_retry(&query)?,
        ..StreamEnds::default()
    })
}

/// The `topic` values of the query, in order: 1 to `max` distinct topic names, else a one-line
/// 400 saying which rule the list broke.
pub fn topic_names(uri: &Uri, max: usize) -> Result<Vec<EventName>, AppError> {
    let query = uri.query().unwrap_or_default().as_bytes();
    let names: Vec<String> = form_urlencoded::parse(query)
        .filter(|(key, _)| key == "topic")
        .map(|(_, value)| value.into_owned())
        .collect();
    if names.is_empty() {
        return Err(AppError::bad_request(
            "name the topics to follow: /sse/topics?topic=a&topic=b",
        ));
    }
    if names.len() > max {
        return Err(AppError::bad_request(format!(
            "at most {max} topics per stream (--max-topics-per-stream), got {}",
            names.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        let name =
            client_id(&name).map_err(|e| AppError::bad_request(format!("topic: {}", e.message)))?;
        if !seen.insert(name.clone()) {
            return Err(AppError::bad_request(format!(
                "topic {name:?} is listed twice"
            )));
        }
        topics.push(EventName::new(name).map_err(AppError::bad_request)?);
    }
    Ok(topics)
}

/// Longest client-chosen id (sessions, demo clocks).
pub const MAX_ID_LEN: usize = 128;

/// A client-chosen id: 1–128 characters of `[A-Za-z0-9._-]`.
pub fn client_id(text: &str) -> Result<String, AppError> {
    let valid = !text.is_empty()
        && text.len() <= MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(AppError::bad_request(format!(
            "an id must be 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ -, got {text:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn numbers_in_range_parse_and_others_are_refused() {
        let q = query(&[
            ("timeout", "3"),
            ("bad", "abc"),
            ("neg", "-1"),
            ("big", "99999999"),
        ]);
        assert_eq!(bounded_u64(&q, "timeout", 10, "seconds"), Ok(Some(3)));
        assert_eq!(bounded_u64(&q, "missing", 10, "seconds"), Ok(None));
        for name in ["bad", "neg", "big"] {
            let err = bounded_u64(&q, name, 86_400, "seconds").expect_err(name);
            assert_eq!(err.status, 400);
            assert!(err.message.starts_with(name), "{}", err.message);
        }
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(client_id("order-1.a_B").is_ok());
        assert!(client_id("").is_err());
        assert!(client_id("a b").is_err());
        assert!(client_id(&"x".repeat(129)).is_err());
    }
}
