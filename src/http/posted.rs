//! The body of a publish request: `text/plain` (the data as is) or JSON
//! `{"event": "name", "data": <string or any JSON>}`, at most 64 KiB.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::Deserialize;

use super::AppError;
use crate::sse::EventName;

/// Largest request body accepted anywhere (a 413 past it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An event someone posted: an optional type name and the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEvent {
    pub name: Option<EventName>,
    pub data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEvent {
    event: Option<String>,
    data: Option<serde_json::Value>,
}

impl PostedEvent {
    /// Parse a body given its `Content-Type` (absent means text).
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, AppError> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        match media.as_deref() {
            // `curl -d` labels any body as a form; it is meant as text, so it is taken as text.
            None | Some("text/plain") | Some("application/x-www-form-urlencoded") => {
                let data = std::str::from_utf8(body)
                    .map_err(|_| AppError::bad_request("the text body is not valid UTF-8"))?;
                Ok(Self {
                    name: None,
                    data: data.to_string(),
                })
            }
            Some("application/json") => {
                // serde also reads a struct from an array (`["chat", "hi"]` as event and
                // data); the documented body is an object, so only an object is read.
                if !is_json_object(body) {
                    return Err(AppError::bad_request(
                        "the JSON body must be an object: {\"event\": \"name\", \"data\": ...}",
                    ));
                }
                let event: JsonEvent = serde_json::from_slice(body).map_err(|e| {
                    AppError::bad_request(format!(
                        "malformed JSON body ({e}); expected {{\"event\": \"name\", \"data\": ...}}"
                    ))
                })?;
                let name = event
                    .event
                    .map(EventName::new)
                    .transpose()
                    .map_err(AppError::bad_request)?;
                let data = match event.data {
                    None => return Err(AppError::bad_request("the JSON body has no \"data\"")),
                    Some(serde_json::Value::String(text)) => text,
                    Some(other) => other.to_string(),
                };
                Ok(Self { name, data })
            }
            Some(other) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {other} is not supported; send text/plain or application/json"
                ),
            )),
        }
    }
}

/// The first byte of a JSON text past its leading whitespace (RFC 8259's four kinds).
/// Whether a JSON text starts as an object. serde also reads a struct from an array (its
/// fields in order), which no documented body is.
pub(super) fn is_json_object(json: &[u8]) -> bool {
    json.iter()
        .copied()
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(b'{')
}

/// Read the whole body within [`MAX_BODY_BYTES`], as a one-line 413 or 400 otherwise.
pub async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is over the {} KiB limit",
                        MAX_BODY_BYTES / 1024
                    ),
                )
            } else {
                AppError::bad_request(format!("cannot read the request body: {rejection}"))
            }
        })
}

impl<S: Send + Sync> FromRequest<S> for PostedEvent {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = body_bytes(request, state).await?;
        Self::parse(content_type.as_deref(), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_json_string_and_json_value_bodies() {
        let text =
            PostedEvent::parse(Some("text/plain; charset=utf-8"), b"hi\nthere").expect("text");
        assert_eq!(text.data, "hi\nthere");
        assert!(text.name.is_none());
        let json = PostedEvent::parse(Some("application/json"), br#"{"event":"chat","data":"x"}"#)
            .expect("json");
        assert_eq!(json.name.expect("name").as_str(), "chat");
        assert_eq!(json.data, "x");
        let value = PostedEvent::parse(Some("application/json"), b"\r\n\t {\"data\":{\"a\":1}}")
            .expect("an object after whitespace");
        assert_eq!(value.data, r#"{"a":1}"#);
    }

    #[test]
    fn bad_bodies_are_one_line_errors() {
        for (content_type, body, status) in [
            (Some("application/json"), &b"{nope"[..], 400),
            (
                Some("application/json"),
                br#"{"event":"a\nb","data":"x"}"#,
                400,
            ),
            (
                Some("application/json"),
                br#"{"event":"a:b","data":"x"}"#,
                400,
            ),
            (Some("application/json"), br#"{"event":"a"}"#, 400),
            // Found by the posted_event fuzz target: serde read an array as the struct.
            (Some("application/json"), br#"[null,"x"]"#, 400),
            (Some("application/json"), br#" ["chat","x"]"#, 400),
            (Some("text/plain"), b"\xff\xfe", 400),
            (Some("image/png"), b"x", 415),
        ] {
            let error = PostedEvent::parse(content_type, body).expect_err("refused");
            assert_eq!(error.status, status);
            assert!(!error.message.contains('\n'));
        }
    }
}
