//! One HTTP/3 request through the axum router: the request head and a streaming body in,
//! the response out frame by frame — each body frame (an SSE event) becomes a DATA frame
//! when the handler yields it, never gathered first.
//!
//! A client that goes away is noticed the way hyper notices it on the other listeners: the
//! response body is dropped, so the SSE stream's guard counts it as gone. That happens when
//! the QUIC connection closes (at once), or when a write fails because the client stopped
//! the stream (STOP_SENDING). h3 0.0.8 gives no way to wait for STOP_SENDING itself, so a
//! single cancelled stream on a live connection is noticed at its next write: the next event
//! or keep-alive comment (`--keepalive`, 15 s by default).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::stream;
use h3::server::{RequestResolver, RequestStream};
use http::{HeaderMap, Request, Response, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::server::conn::ConnInfo;

type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = RequestStream<h3_quinn::RecvStream, Bytes>;

/// Headers that belong to an HTTP/1.1 connection and are malformed in HTTP/3 (RFC 9114
/// §4.2); hyper drops the same ones for HTTP/2.
const CONNECTION_HEADERS: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HeaderName::from_static("keep-alive"),
];

/// Read one request, run it through `app`, and stream the response back.
pub async fn serve(
    resolver: RequestResolver<h3_quinn::Connection, Bytes>,
    conn: Arc<ConnInfo>,
    quic: quinn::Connection,
    app: Router,
) {
    let (request, stream) = match resolver.resolve_request().await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(
                listener = "h3",
                connection = conn.id,
                "request not read: {e}"
            );
            return;
        }
    };
    let (mut send, recv) = stream.split();
    let (mut head, ()) = request.into_parts();
    head.extensions.insert(conn.context());
    let request = Request::from_parts(head, Body::from_stream(request_body(recv)));
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (mut head, body) = response.into_parts();
    strip_connection_headers(&mut head.headers);
    if let Err(e) = send.send_response(Response::from_parts(head, ())).await {
        tracing::debug!(
            listener = "h3",
            connection = conn.id,
            "response not sent: {e}"
        );
        return;
    }
    tokio::select! {
        // The body is dropped with this branch: a stream's guard sees its client gone.
        _ = quic.closed() => {}
        _ = send_body(&mut send, body) => {}
    }
}

/// The request body as the router reads it: each DATA frame as it arrives.
fn request_body(
    recv: RecvHalf,
) -> impl futures_util::Stream<Item = Result<Bytes, h3::error::StreamError>> + Send + 'static {
    stream::unfold(Some(recv), |recv| async move {
        let mut recv = recv?;
        match recv.recv_data().await {
            Ok(Some(mut data)) => {
                let bytes = data.copy_to_bytes(data.remaining());
                Some((Ok(bytes), Some(recv)))
            }
            Ok(None) => None,
            // Said once, then the body ends.
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Write each body frame as a DATA frame (trailers as trailers), then end the stream. Gives
/// up at the first failed write: the client stopped reading or left.
async fn send_body(send: &mut SendHalf, mut body: Body) {
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::debug!(listener = "h3", "response body failed: {e}");
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return;
            }
        };
        let written = match frame.into_data() {
            Ok(data) if data.is_empty() => Ok(()),
            Ok(data) => send.send_data(data).await,
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => send.send_trailers(trailers).await,
                Err(_) => Ok(()),
            },
        };
        if written.is_err() {
            return;
        }
    }
    let _ = send.finish().await;
}

fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in &CONNECTION_HEADERS {
        headers.remove(name);
    }
}
