//! Where a stream resumes and what its query asks for, from any `Last-Event-ID` header and
//! any query: `LastEventId::from_parts` (the header, else `?lastEventId=`), the bounded
//! numbers (`?timeout=`, `?retry=`) and client-chosen ids (`/sse/sessions/{id}`). Nothing
//! panics; a refusal is a 400 with one line naming what was wrong; an accepted value is the
//! documented reading of the text (a whole number, within its bound; an id of 1–128
//! characters of `A-Z a-z 0-9 . _ -`); and a non-blank header wins over the query.
//!
//! Input: one flags byte (bit 0: a `Last-Event-ID` header is present), then lines: the
//! header's bytes, the query (after `?`), and a client id (UTF-8, lossily). A seed reads
//! like `1 42\nlastEventId=7&timeout=3\nalice`. A header or URI that `http` refuses could
//! not reach sselab, and ends the run.

#![no_main]

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use sselab::http::params::{self, LAST_EVENT_ID_QUERY, LastEventId, MAX_ID_LEN};
use sselab::sse::{MAX_RETRY_MS, MAX_TIMEOUT_SECS};
use sselab_fuzz::{assert_refusal, split_once, whole_number};

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let (header, rest) = split_once(rest, b'\n');
    let (query, id) = split_once(rest.unwrap_or_default(), b'\n');
    let mut headers = HeaderMap::new();
    if flags & 1 == 1 {
        let Ok(value) = HeaderValue::from_bytes(header) else {
            return;
        };
        headers.insert("last-event-id", value);
    }
    let Ok(uri) = Uri::try_from([b"/sse/topics/news?", query].concat()) else {
        return;
    };
    let Ok(Query(query)) = Query::<HashMap<String, String>>::try_from_uri(&uri) else {
        return;
    };

    check_last_event_id(&headers, &uri, &query);
    check_bounded(&query, "timeout", MAX_TIMEOUT_SECS);
    check_bounded(&query, "retry", MAX_RETRY_MS);
    check_client_id(&String::from_utf8_lossy(id.unwrap_or_default()));
});

fn check_last_event_id(headers: &HeaderMap, uri: &Uri, query: &HashMap<String, String>) {
    let header = headers
        .get("last-event-id")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .filter(|text| !text.trim().is_empty());
    let (source, text) = match (&header, query.get(LAST_EVENT_ID_QUERY)) {
        (Some(text), _) => ("Last-Event-ID", Some(text)),
        (None, Some(text)) if !text.trim().is_empty() => (LAST_EVENT_ID_QUERY, Some(text)),
        _ => ("", None),
    };
    let resolved = LastEventId::from_parts(headers, uri);
    match (text.map(|t| whole_number(t)), &resolved) {
        (None, Ok(LastEventId(None))) => {}
        (Some(Some(expected)), Ok(LastEventId(Some(id)))) => assert_eq!(*id, expected),
        (Some(None), Err(error)) => {
            assert_refusal(error, &[400]);
            assert!(error.message.starts_with(source), "{}", error.message);
        }
        (expected, got) => panic!("{source} {text:?}: expected {expected:?}, got {got:?}"),
    }
    if header.is_some() {
        let without_query = Uri::from_static("/sse/topics/news");
        assert_eq!(
            LastEventId::from_parts(headers, &without_query),
            resolved,
            "the header must win over the query"
        );
    }
}

fn check_bounded(query: &HashMap<String, String>, name: &str, max: u64) {
    let resolved = params::bounded_u64(query, name, max, "units");
    let expected = query
        .get(name)
        .map(|text| whole_number(text).filter(|value| *value <= max));
    match (expected, resolved) {
        (None, Ok(None)) => {}
        (Some(Some(expected)), Ok(Some(value))) => assert_eq!(value, expected),
        (Some(None), Err(error)) => {
            assert_refusal(&error, &[400]);
            assert!(error.message.starts_with(name), "{}", error.message);
        }
        (expected, got) => panic!(
            "?{name}={:?}: expected {expected:?}, got {got:?}",
            query.get(name)
        ),
    }
}

fn check_client_id(text: &str) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let valid = (1..=MAX_ID_LEN).contains(&text.chars().count()) && text.chars().all(allowed);
    match params::client_id(text) {
        Ok(id) => {
            assert!(valid, "accepted the id {text:?}");
            assert_eq!(id, text);
        }
        Err(error) => {
            assert!(!valid, "refused the id {text:?}");
            assert_refusal(&error, &[400]);
        }
    }
}
