//! The remedies for the six-connection wall, as files a page loads: `sselab.js` (the
//! `SharedEventSource` client library: one stream shared by every tab, by leader election or
//! a SharedWorker), the worker it uses, and the `/lab` section that measures them.
//!
//! The server needs nothing else: a tab taking over a shared stream resumes with
//! `?lastEventId=` ([`super::params::LastEventId`]), and the replay does the rest.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const SSELAB_JS: &str = include_str!("assets/sselab.js");
const SSELAB_WORKER_JS: &str = include_str!("assets/sselab-worker.js");
const REMEDIES_JS: &str = include_str!("assets/remedies.js");

fn javascript(source: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
        .into_response()
}

/// `GET /sselab.js`: the client library.
pub async fn library() -> Response {
    javascript(SSELAB_JS)
}

/// `GET /sselab-worker.js`: the SharedWorker behind `share: 'worker'`.
pub async fn worker() -> Response {
    javascript(SSELAB_WORKER_JS)
}

/// `GET /lab/remedies.js`: the remedies section of `/lab`.
pub async fn lab_section() -> Response {
    javascript(REMEDIES_JS)
}
