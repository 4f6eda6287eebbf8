//! `Alt-Svc: h3=":PORT"` on the HTTPS listener's answers, so a browser that has QUIC on
//! learns the HTTP/3 listener exists and may move there for its next requests (RFC 7838,
//! RFC 9114 §3.1.1). Only that listener says it: the HTTP/1.1-only control must stay HTTP/1.1,
//! and plain HTTP cannot vouch for an `https` origin.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::ALT_SVC;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::server::ListenerKind;
use crate::server::conn::ConnContext;

/// How long (seconds) a browser may remember the alternative: a day, as servers usually say.
const MAX_AGE_SECS: u64 = 86_400;

/// The header value for an HTTP/3 listener on `port`.
pub fn header_value(port: u16) -> HeaderValue {
    // Digits and ASCII only: always a valid header value.
    HeaderValue::from_str(&format!("h3=\":{port}\"; ma={MAX_AGE_SECS}"))
        .unwrap_or(HeaderValue::from_static("clear"))
}

/// Adds the header to answers on the HTTPS (h2 + http/1.1) listener when HTTP/3 is on and
/// `--no-alt-svc` is not given.
pub async fn advertise(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let on_https = request
        .extensions()
        .get::<ConnContext>()
        .is_some_and(|c| c.conn.listener == ListenerKind::Https);
    let mut response = next.run(request).await;
    if on_https
        && state.settings.alt_svc
        && let Some(port) = state.settings.ports.h3
    {
        response.headers_mut().insert(ALT_SVC, header_value(port));
    }
    response
}
