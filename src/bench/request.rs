//! One bench request, as every mode sends it: asking for an event stream, as a browser's
//! EventSource does. So a server that answers EventSources differently (sselab turns a
//! refusal a later try can pass into a `200` stream with one `refused` event) gives the bench
//! what it gives a browser, and [`refused`] tells that answer from an open stream.

use bytes::Bytes;
use http::{HeaderMap, Response, Uri};
use http_body_util::Full;

use crate::client::{Conn, ResponseBody};
use crate::http::refusals::REFUSED_HEADER;

/// Send `method uri` on `conn` with `Accept: text/event-stream` (and `content_type`, for a
/// body); the error is one line.
pub(super) async fn send(
    conn: &Conn,
    method: &str,
    uri: &Uri,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response<ResponseBody>, String> {
    let mut builder = conn
        .request(method, uri)
        .header(http::header::ACCEPT, "text/event-stream");
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    conn.send(request).await
}

/// The reason a refusal stream names in its `x-sselab-refused` header (`max_streams`, …):
/// a `200 text/event-stream` that is not a stream but "come back after `retry:`".
pub(super) fn refused(headers: &HeaderMap) -> Option<String> {
    let reason = headers.get(REFUSED_HEADER)?;
    Some(String::from_utf8_lossy(reason.as_bytes()).into_owned())
}

/// How a report names a refusal stream among the failures of a mode that counts them so.
pub(super) fn refused_failure(reason: &str) -> String {
    format!("refused for now: {reason} (200 refusal stream)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_stream_is_known_by_its_header_alone() {
        let mut headers = HeaderMap::new();
        assert_eq!(refused(&headers), None);
        headers.insert(REFUSED_HEADER, "max_streams".parse().expect("ascii"));
        assert_eq!(refused(&headers).as_deref(), Some("max_streams"));
    }
}
