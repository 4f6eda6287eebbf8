//! One response body type for every protocol the client speaks, so the bench, `get_body` and
//! the tests read an HTTP/3 response exactly as they read an HTTP/1.1 or HTTP/2 one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h3::H3Body;

/// Why reading a response body failed (a reset, a closed connection), from either stack.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: hyper's for HTTP/1.1 and HTTP/2, h3's for HTTP/3.
pub enum ResponseBody {
    Hyper(Incoming),
    H3(H3Body),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ResponseBody::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(|e| Box::new(e) as BodyError))),
            ResponseBody::H3(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(|e| Box::new(e) as BodyError))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Hyper(body) => body.is_end_stream(),
            ResponseBody::H3(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Hyper(body) => body.size_hint(),
            ResponseBody::H3(body) => body.size_hint(),
        }
    }
}
