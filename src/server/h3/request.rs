//! One HTTP/3 request through the axum router: the request head and a streaming body in,
//! the response out frame by frame — each body frame (an SSE event) becomes a DATA frame
//! when the handler yields it, never gathered first.
//!
//! A client that goes away is noticed the way hyper notices it on the other listeners: the
//! response body is dropped, so the SSE stream's guard counts it as gone. That happens when
//! the QUIC connection closes, or when a write fails because the client stopped the stream
//! (STOP_SENDING: a browser closing a tab). h3 0.0.8 has no way to wait for one stream's
//! STOP_SENDING (hyperium/h3#350), so the connection watches QUIC's count of STOP_SENDING
//! frames received, and when it grows each of its idle event streams writes an SSE comment
//! line (`:`, which every SSE reader skips): the stopped one fails that write and ends, so its
//! stream slot (`--h3-max-streams`) is free again at once rather than at the next keep-alive.
//! Only event streams wait long enough to need it, and only there is a comment harmless. An
//! empty DATA frame would say nothing to any body, but h3 0.0.8's own client reads one as the
//! end of the body, so it is not used.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::{StreamExt, stream};
use h3::server::{RequestResolver, RequestStream};
use http::{HeaderMap, Request, Response, header};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::server::conn::ConnInfo;

type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = RequestStream<h3_quinn::RecvStream, Bytes>;

/// What an idle event stream writes to find out whether it is the stopped one: a comment
/// line, skipped by every SSE reader wherever it falls between events.
const PROBE: &[u8] = b":\n";

/// Headers that belong to an HTTP/1.1 connection and are malformed in HTTP/3 (RFC 9114
/// §4.2); hyper drops the same ones for HTTP/2.
const CONNECTION_HEADERS: [header::HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HeaderName::from_static("keep-alive"),
];

/// Read one request, run it through `app`, and stream the response back. The resolver comes
/// boxed: an async fn's arguments stay in its future for its whole life, and it is 400 bytes
/// needed only until the request head is read. `stop_sending` changes when the connection
/// received a STOP_SENDING (for some stream).
pub async fn serve(
    resolver: Box<RequestResolver<h3_quinn::Connection, Bytes>>,
    conn: Arc<ConnInfo>,
    quic: quinn::Connection,
    app: Router,
    stop_sending: watch::Receiver<u64>,
) {
    // The futures up to the response head are boxed: alive only until then, they would
    // otherwise size the task of every stream for as long as it streams.
    let (request, stream) = match Box::pin(resolver.resolve_request()).await {
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
    let response = match Box::pin(app.oneshot(request)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (mut head, body) = response.into_parts();
    strip_connection_headers(&mut head.headers);
    let probe = is_event_stream(&head.headers).then_some(stop_sending);
    if let Err(e) = Box::pin(send.send_response(Response::from_parts(head, ()))).await {
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
        _ = send_body(&mut send, body, probe) => {}
    }
}

/// The request body as the router reads it: each DATA frame as it arrives. Fused: extractors
/// may poll a body again after its end (axum's `Bytes` does), which an unfold would panic on.
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
    .fuse()
}

/// Write each body frame as a DATA frame (trailers as trailers), then end the stream. Gives
/// up at the first failed write: the client stopped reading or left. With `probe` (an event
/// stream), each STOP_SENDING on the connection while it waits for the next frame makes it
/// check, with a comment line, that this stream is not the stopped one.
async fn send_body(send: &mut SendHalf, mut body: Body, probe: Option<watch::Receiver<u64>>) {
    // False without a probe, or once the watcher is gone with its connection: frames alone
    // decide then.
    let mut watching = probe.is_some();
    let mut stop_sending = probe.unwrap_or_else(|| watch::channel(0).1);
    // Only a STOP_SENDING from now on can be for this stream: one the connection received
    // before (a cancelled earlier request) must not make this response probe at once.
    stop_sending.borrow_and_update();
    loop {
        let next = tokio::select! {
            // A frame that is ready goes first: the body's own bytes need no probe.
            biased;
            next = body.frame() => next,
            changed = stop_sending.changed(), if watching => {
                watching = changed.is_ok();
                if watching
                    && Box::pin(send.send_data(Bytes::from_static(PROBE))).await.is_err()
                {
                    return;
                }
                continue;
            }
        };
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::debug!(listener = "h3", "response body failed: {e}");
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return;
            }
        };
        // Each write's future is boxed, alive only while it writes: inline, h3's write futures
        // would size every stream's task for its whole life, most of which is idle.
        let written = match frame.into_data() {
            Ok(data) if data.is_empty() => Ok(()),
            Ok(data) => Box::pin(send.send_data(data)).await,
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => Box::pin(send.send_trailers(trailers)).await,
                Err(_) => Ok(()),
            },
        };
        if written.is_err() {
            return;
        }
    }
    let _ = Box::pin(send.finish()).await;
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in &CONNECTION_HEADERS {
        headers.remove(name);
    }
}
