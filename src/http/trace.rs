//! Each request's tracing span and its log lines, as tower-http's `TraceLayer::new_for_http`
//! writes them (a `request` span with method, URI and version; "started processing request"
//! and "finished processing request" at debug; "response failed" at error for a 5xx), without
//! wrapping the response body.
//!
//! `TraceLayer` also wraps every body to time each chunk and log its end: on an SSE stream
//! that is two clock reads and a span entry per event on every stream, about 6 % of a
//! delivery's instructions (BENCHMARKS.md, issue 16). A stream's end is logged by its guard
//! ("stream closed", with its path, reason and duration) instead.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The middleware: run the rest of the router inside the request's span.
pub async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        version = ?request.version(),
    );
    async move {
        tracing::debug!("started processing request");
        let started = Instant::now();
        let response = next.run(request).await;
        let latency = format_args!("{} ms", started.elapsed().as_millis());
        let status = response.status();
        tracing::debug!(%latency, status = status.as_u16(), "finished processing request");
        if status.is_server_error() {
            tracing::error!(classification = %format_args!("Status code: {status}"), %latency, "response failed");
        }
        response
    }
    .instrument(span)
    .await
}
