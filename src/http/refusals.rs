//! What a browser sees when sselab says no for now: the middleware on every SSE route that
//! turns a refusal a later try can pass (a `503` carrying [`Refused`]) into a stream the
//! EventSource reconnects from, when the request asked for `text/event-stream`.
//!
//! An EventSource sends `Accept: text/event-stream` on every request and reads any answer
//! but `200 text/event-stream` as final. So for it a refusal is `200` with one frame
//! ([`refusal_frame`]: `retry:` with the `Retry-After` spread by `--retry-jitter`, an
//! `event: refused` naming the reason, no `id:`) and the end of the body: the browser comes
//! back after `retry:` with its `Last-Event-ID` untouched. Every other client (curl's
//! `*/*`, `fetch`, `application/json`) keeps the `503` + `Retry-After` an HTTP client
//! expects, and so does everyone under `--refusals status` (a request may ask for either
//! itself with `?refusals=status|stream`: the lab shows both side by side). Final answers (400, 401, 403,
//! 404, the 204 that ends a finished order) are not touched: a later try cannot pass them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::Refused;
use super::streaming;
use super::{AppError, AppState};
use crate::sse::{RefusalAnswer, refusal_frame};

/// The header naming the reason on a refusal stream, for tools that do not parse the body.
pub const REFUSED_HEADER: &str = "x-sselab-refused";

/// Does the request ask for an event stream? `Accept: text/event-stream` anywhere in its
/// `Accept` fields (with any parameters), as every EventSource sends.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/event-stream")
        })
}

/// `?refusals=status|stream`: the answer this request asks for itself, if it does.
fn requested_answer(uri: &Uri) -> Result<Option<RefusalAnswer>, AppError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let asked = form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "refusals")
        .map(|(_, value)| value);
    match asked.as_deref() {
        None => Ok(None),
        Some("status") => Ok(Some(RefusalAnswer::Status)),
        Some("stream") => Ok(Some(RefusalAnswer::Stream)),
        Some(other) => Err(AppError::bad_request(format!(
            "refusals must be status or stream, got {other:?}"
        ))),
    }
}

/// The middleware: answer an EventSource's refusal with [`refusal_frame`] (see the module).
pub async fn answer_event_sources(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let wants_stream = wants_event_stream(request.headers());
    let answer = match requested_answer(request.uri()) {
        Ok(asked) => asked.unwrap_or(state.settings.refusals),
        Err(error) => return error.into_response(),
    };
    let response = next.run(request).await;
    if !wants_stream || answer == RefusalAnswer::Status {
        return response;
    }
    let Some(refused) = response.extensions().get::<Refused>().cloned() else {
        return response;
    };
    let retry_ms = state
        .settings
        .retry
        .for_refusal(refused.retry_after_secs.saturating_mul(1000));
    tracing::info!(
        reason = %refused.reason,
        retry_ms,
        "refused for now: answered as a stream the EventSource comes back from"
    );
    let frame = refusal_frame(refused.reason, &refused.message, retry_ms);
    let mut stream = streaming::response(futures_util::stream::once(async move {
        Ok::<_, std::convert::Infallible>(frame)
    }));
    stream.headers_mut().insert(
        REFUSED_HEADER,
        HeaderValue::from_static(refused.reason.as_str()),
    );
    stream.extensions_mut().insert(refused);
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).expect("ascii"));
        }
        headers
    }

    #[test]
    fn an_event_source_accept_is_recognised_in_any_form() {
        assert!(wants_event_stream(&accept(&["text/event-stream"])));
        assert!(wants_event_stream(&accept(&["Text/Event-Stream; q=0.9"])));
        assert!(wants_event_stream(&accept(&[
            "application/json",
            "text/html, text/event-stream"
        ])));
    }

    #[test]
    fn other_clients_keep_their_status() {
        assert!(!wants_event_stream(&accept(&[])));
        assert!(!wants_event_stream(&accept(&["*/*"])));
        assert!(!wants_event_stream(&accept(&["application/json"])));
        assert!(!wants_event_stream(&accept(&["text/event-streams"])));
    }
}
