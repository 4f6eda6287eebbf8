//! sselab: a Server-Sent Events server and lab that shows how SSE behaves over HTTP/1.1
//! (six connections per host in a browser) and HTTP/2 (every stream on one connection).
//!
//! Where things live:
//! - [`config`]: the command-line flags and their `SSELAB_*` environment twins.
//! - [`certs`]: the self-signed certificate: load, check, generate, fingerprint.
//! - [`listeners`]: binding the three listeners, serving one router on all, shutting down.
//! - [`conn`]: per-connection facts (listener, id, peer, request count) for every request.
//! - [`app`]: the router and the state its handlers share.
//! - [`sse`]: the SSE wire encoder and the body that adds keep-alive, timeout and shutdown.
//! - [`sse_parser`]: a spec-conformant incremental parser for sselab's own clients and tests.
//! - [`streams`]: the registry of open streams, its cap, and the guard that counts each end once.
//! - [`clock`]: `/sse/hello`, the seed's clock with ids, timeout and `retry:`.
//! - [`demo`]: `/sse/demo`, the clock that ends at the whole minute and then answers 204.
//! - [`pages`]: `/`, `/proto`, `/healthz`.
//! - [`params`]: query values and headers turned into numbers or a one-line 400.
//! - [`error`]: the error type every handler returns.
//! - [`shutdown`]: waiting for SIGINT / SIGTERM.

pub mod api;
pub mod app;
pub mod certs;
pub mod clock;
pub mod config;
pub mod conn;
pub mod demo;
pub mod error;
pub mod fanout;
pub mod hub;
pub mod listeners;
pub mod orders;
pub mod pages;
pub mod params;
pub mod posted;
pub mod shutdown;
pub mod sse;
pub mod sse_parser;
pub mod streams;
pub mod tombstones;

pub use config::{Cli, Command, ServeArgs};
pub use listeners::Server;

/// `sselab serve`: bind, print where to look, serve until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = Server::bind(&args)?;
    println!("{}", server.banner());
    server.serve(shutdown::shutdown_signal()).await
}

/// `sselab cert`: write a fresh certificate and print how to trust it.
pub fn regenerate_certificate(args: &config::CertArgs) -> anyhow::Result<()> {
    let request = certs::CertRequest {
        dir: &args.cert_dir,
        extra_sans: &args.sans,
        regenerate: true,
    };
    let material = certs::generate(&args.cert_dir, &request.names())?;
    println!("{}", certs::trust_instructions(&material));
    Ok(())
}
