//! sselab: a Server-Sent Events server and lab that shows how SSE behaves over HTTP/1.1
//! (six connections per host in a browser) and HTTP/2 (every stream on one connection).
//!
//! # The layers
//! Folders are layers; imports only go down this list, never up.
//!
//! | layer | what it owns |
//! |---|---|
//! | [`commands`] | what each subcommand does with its flags: `serve` builds the state and router and runs the listeners; `tabs`, `shot`, `bench`, `cert`; `report`, the whole browser matrix written as HTML, JSON and the README's table |
//! | [`cli`] | every flag (clap), with its `SSELAB_*` twin; describes and validates, opens nothing |
//! | [`bench`](mod@bench), [`browser`] | the tools: a load generator for any SSE server, a subcommand per mode (`load`; `reconnect`, across a restart; `storm`, more clients than the cap; `attack`, on a server on this machine); a headless browser (Chromium over CDP, Firefox ESR over WebDriver BiDi, WebKitGTK over WebDriver classic) |
//! | [`client`] | one HTTP/1.1 + HTTP/2 (+ TLS) client, for the load generator and the tests; hand-written HTTP/2 frames for the attacks |
//! | [`http`] | the one router, its state, one file of handlers per feature, and the error type that maps every lower layer's refusals to a status code |
//! | [`auth`] | JWT authorization without HTTP: channel patterns, claims, keys, checking and signing tokens, the rule that lets a request through (beside `pubsub`: neither imports the other) |
//! | [`pubsub`] | the channel boundary (in-process, or shared between nodes through Redis), the fan-out (numbered events, replay rings, bounded queues), sessions and topics, many topics read as one stream (with the cursor that resumes each), orders, tombstones — with its own error types |
//! | [`sse`] | the wire encoder, the stream driver (keep-alive, timeout, shutdown), each stream's `retry:` (jitter, shutdown spread), the stream registry, the parser |
//! | [`server`] | sockets, TLS and certificates, per-connection facts, connection caps and protocol limits, the shutdown signal — no routes |
//! | [`sync`] | the lock helper everything uses |
//!
//! **The rule:** `auth`, `pubsub` and `sse` never import `http` or axum; `http` never imports `cli`
//! or `commands`; nothing imports a layer above it. `scripts/check_layers.sh` (run by
//! `scripts/test.sh`) fails the build when an import breaks it.

pub mod auth;
pub mod bench;
pub mod browser;
pub mod cli;
pub mod client;
pub mod commands;
pub mod http;
pub mod pubsub;
pub mod server;
pub mod sse;
pub mod sync;

pub use cli::{Cli, Command, ServeArgs};
pub use commands::Server;
