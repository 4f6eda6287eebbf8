//! An answer given before the request body was read — a 401 before a publish body, a 404
//! for a POST to nowhere — must reach an HTTP/2 client as an answer, not as an error.
//!
//! Answering early is allowed: h2 then ends the stream with `RST_STREAM(NO_ERROR)` (RFC 9113
//! §8.1). But Debian 12's curl 7.88 reports that reset, whenever it overtakes its own
//! upload, as "Stream error in the HTTP/2 framing layer" and never shows the one-line
//! reason. So this layer reads what is left of an unread request body before the answer goes
//! out — at most [`DRAIN_BYTES`] (what a publish may send anyway) for at most [`DRAIN_TIME`]
//! — and only a body that does not end within those bounds gets the early reset. Requests
//! without a body (every GET, every SSE stream) pass untouched.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use http_body_util::BodyExt;

use super::posted::MAX_BODY_BYTES;
use crate::sync::lock;

/// Most of an unread request body read before answering: the largest body accepted anywhere.
pub const DRAIN_BYTES: usize = MAX_BODY_BYTES;

/// Longest an answer waits for the rest of an unread request body.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Where a request body dropped before its end waits for the answer.
type Unread = Arc<Mutex<Option<Body>>>;

/// The middleware.
pub async fn drain_before_answering(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let unread = Unread::default();
    let request = request.map(|body| {
        Body::new(Watched {
            body: Some(body),
            unread: unread.clone(),
        })
    });
    let response = next.run(request).await;
    let rest = lock(&unread).take();
    if let Some(rest) = rest {
        drain(rest).await;
    }
    response
}

/// Read the rest of a body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0;
        // An error is a reset or broken upload: nothing left to wait for.
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > DRAIN_BYTES {
                return;
            }
        }
    })
    .await;
}

/// The request body as the handler sees it; dropped unfinished, it parks the rest in `unread`.
struct Watched {
    body: Option<Body>,
    unread: Unread,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        match self.body.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            |body| body.size_hint(),
        )
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(body) = self.body.take().filter(|body| !body.is_end_stream()) {
            *lock(&self.unread) = Some(body);
        }
    }
}
