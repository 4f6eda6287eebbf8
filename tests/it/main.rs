//! Every integration test that needs no browser, in one binary (one link of the crate, one
//! copy of `tests/util`): real listeners on port 0, real TLS, HTTP/2, HTTP/3 and `redis-server`.
//! One file per claim; run one with `cargo test --test it streams::`.

#[path = "../util/mod.rs"]
mod util;

mod abuse;
mod abuse_connections;
mod auth;
mod auth_cli;
mod auth_expiry;
mod auth_keys;
mod auth_routes;
mod bench;
mod certs;
mod cli;
mod drain;
mod h2_settings;
mod h3;
mod h3_pages;
mod hub;
mod orders;
mod redis;
mod redis_cluster;
mod redis_failover;
mod redis_sessions;
mod redis_tls;
mod refusals;
mod shutdown;
mod slow_clients;
mod sse_roundtrip;
mod streams;
mod topics;
