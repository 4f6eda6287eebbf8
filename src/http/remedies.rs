//! The remedies for the six-connection wall, as files a page loads: `sselab.js` (the
//! `SharedEventSource` client library: one stream shared by every tab, by leader election or
//! a SharedWorker), the worker it uses, and the `/lab` section that measures them.
//!
//! The server needs nothing else: a tab taking over a shared stream resumes with
//! `?lastEventId=` ([`super::params::LastEventId`]), and the replay does the rest.

use axum::response::Response;

use super::lab::{JS, asset};

const SSELAB_JS: &str = include_str!("assets/sselab.js");
const SSELAB_WORKER_JS: &str = include_str!("assets/sselab-worker.js");
const REMEDIES_JS: &str = include_str!("assets/remedies.js");

/// `GET /sselab.js`: the client library.
pub async fn library() -> Response {
    asset(JS, SSELAB_JS)
}

/// `GET /sselab-worker.js`: the SharedWorker behind `share: 'worker'`.
pub async fn worker() -> Response {
    asset(JS, SSELAB_WORKER_JS)
}

/// `GET /lab/remedies.js`: the remedies section of `/lab`.
pub async fn lab_section() -> Response {
    asset(JS, REMEDIES_JS)
}
