//! The publish body parser (`PostedEvent::parse`) with any `Content-Type` and any body: it
//! never panics; a refusal is a 400 or 415 with a one-line reason, and a 415 only for a media
//! type it does not take; an accepted body means what it says — a text body is the data as
//! is, a JSON body's `data` (a string as is, any other value as JSON text) and `event` are
//! what a JSON parser reads there — and the event then survives the SSE encoder and the spec
//! parser (the data with its line breaks made `\n`, the name intact).
//!
//! Input: one flags byte (bit 0: a `Content-Type` header is present), then the header's value
//! up to the first `\n` (taken as UTF-8, lossily), then the body. A seed reads like
//! `1application/json\n{"data":"hi"}`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sselab::http::posted::PostedEvent;
use sselab::sse::Frame;
use sselab_fuzz::{assert_refusal, delivered, parse_stream, split_once};

/// The media types sselab documents, in the spelling a client most likely sends.
const ACCEPTED: [&str; 3] = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json",
];

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let (header, body) = split_once(rest, b'\n');
    let body = body.unwrap_or_default();
    let content_type = (flags & 1 == 1).then(|| String::from_utf8_lossy(header).into_owned());
    match PostedEvent::parse(content_type.as_deref(), body) {
        Err(error) => {
            assert_refusal(&error, &[400, 415]);
            if error.status == 415 {
                let essence = content_type
                    .as_deref()
                    .map(essence)
                    .expect("415 without a Content-Type");
                assert!(
                    !ACCEPTED.contains(&essence.as_str()),
                    "415 for {content_type:?}"
                );
            }
        }
        Ok(event) => {
            let as_text = event.name.is_none() && event.data.as_bytes() == body;
            assert!(
                as_text || means_the_json(body, &event),
                "{content_type:?} {body:?} was read as {event:?}"
            );
            let mut frame = Frame::new().id(1);
            if let Some(name) = &event.name {
                frame = frame.event(name);
            }
            let (events, _) = parse_stream(&frame.data(&event.data).finish());
            assert_eq!(events.len(), 1, "the data added or hid an event");
            let name = event.name.as_ref().map_or("message", |n| n.as_str());
            assert_eq!(events[0].event, name);
            assert_eq!(events[0].data, delivered(&event.data));
            assert_eq!((events[0].id.as_str(), events[0].retry), ("1", None));
        }
    }
});

/// A media type without its parameters, spaces and case: `Text/Plain; charset=x` is
/// `text/plain`.
fn essence(content_type: &str) -> String {
    let media = content_type.split(';').next().unwrap_or_default();
    media.trim_matches([' ', '\t']).to_ascii_lowercase()
}

/// The body is a JSON object whose `data` and `event` are what `event` holds.
fn means_the_json(body: &[u8], event: &PostedEvent) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let data_matches = match object.get("data") {
        Some(Value::String(text)) => *text == event.data,
        Some(Value::Null) | None => false,
        // As JSON text (`Value == String` would compare it as a JSON string instead).
        Some(other) => serde_json::to_string(other).is_ok_and(|json| json == event.data),
    };
    let name_matches = match (object.get("event"), &event.name) {
        (None | Some(Value::Null), None) => true,
        (Some(Value::String(text)), Some(name)) => text == name.as_str(),
        _ => false,
    };
    data_matches && name_matches && object.keys().all(|key| key == "data" || key == "event")
}
