//! One bench request, as every mode sends it: asking for an event stream.

use bytes::Bytes;
use http::{Response, Uri};
use http_body_util::Full;

use crate::client::{Conn, ResponseBody};

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
