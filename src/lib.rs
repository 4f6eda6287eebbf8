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
//! - [`streams`]: the registry of open streams, its cap, its counters, and the guard that
//!   counts each end once.
//! - [`clock`]: `/sse/hello`, the seed's clock with ids, timeout and `retry:`.
//! - [`demo`]: `/sse/demo`, the clock that ends at the whole minute and then answers 204.
//! - [`fanout`]: numbered events per channel, replay rings, bounded subscriber queues.
//! - [`hub`]: sessions and topics on top of the fan-out: linger, same-id, delete, caps.
//! - [`api`]: the hub over HTTP (subscribe, post, broadcast, list, delete).
//! - [`orders`]: simulated orders whose progress streams and ends with 204.
//! - [`posted`]: the body of a publish request (text or JSON, 64 KiB at most).
//! - [`tombstones`]: ids that ended on purpose, remembered (bounded) to answer 204.
//! - [`pages`]: `/`, `/proto`, `/healthz`.
//! - [`lab`]: `/lab`, `/lab/dashboard`, the order page; HTML/JS/CSS from `src/assets`.
//! - [`metrics`]: `/metrics` in the Prometheus text format, from the same counters.
//! - [`stats`]: `/api/stats` and `/sse/stats`, what the dashboard shows.
//! - [`bench`]: `sselab bench`, a load generator for any SSE server (hyper clients).
//! - [`browser`]: headless Chromium over CDP, for `sselab tabs`, `sselab shot` and the tests.
//! - [`params`]: query values and headers turned into numbers or a one-line 400.
//! - [`error`]: the error type every handler returns.
//! - [`shutdown`]: waiting for SIGINT / SIGTERM.

pub mod api;
pub mod app;
pub mod bench;
pub mod browser;
pub mod certs;
pub mod clock;
pub mod config;
pub mod conn;
pub mod demo;
pub mod error;
pub mod fanout;
pub mod hub;
pub mod lab;
pub mod listeners;
pub mod metrics;
pub mod orders;
pub mod pages;
pub mod params;
pub mod posted;
pub mod shutdown;
pub mod sse;
pub mod sse_parser;
pub mod stats;
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

/// The SPKI hash of the certificate in `dir`, if one is there and readable.
fn trusted_spki(dir: &std::path::Path) -> Option<String> {
    certs::load(&dir.join(certs::CERT_FILE), &dir.join(certs::KEY_FILE))
        .ok()
        .map(|material| material.spki_sha256)
}

/// `sselab tabs`: N tabs of one page in one headless profile; one line per tab, then the
/// summary line `open=N pending=M protocol=P connections=C`.
pub async fn open_tabs(args: config::TabsArgs) -> anyhow::Result<()> {
    let browser =
        browser::LabBrowser::launch(trusted_spki(&args.browser.cert_dir).as_deref()).await?;
    let report = browser
        .open_tabs(
            &args.url,
            args.tabs as usize,
            std::time::Duration::from_secs(args.settle),
        )
        .await;
    browser.close().await;
    let report = report?;
    for (index, tab) in report.tabs.iter().enumerate() {
        println!(
            "tab {:>3}: {:<7} events={:<4} protocol={:<8} connection={}",
            index + 1,
            if tab.open { "open" } else { "pending" },
            tab.events,
            tab.protocol.as_deref().unwrap_or("-"),
            tab.connection.map_or("-".into(), |c| c.to_string())
        );
    }
    println!("{}", report.line());
    Ok(())
}

/// `sselab shot`: a PNG of a page after it settled.
pub async fn screenshot(args: config::ShotArgs) -> anyhow::Result<()> {
    let browser =
        browser::LabBrowser::launch(trusted_spki(&args.browser.cert_dir).as_deref()).await?;
    let result = browser
        .screenshot(
            &args.url,
            std::time::Duration::from_secs(args.wait),
            &args.out,
        )
        .await;
    browser.close().await;
    result?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// `sselab bench`: run the load generator and print its report (text, or JSON with --json).
pub async fn bench_command(args: bench::BenchArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = bench::run(args).await?;
    let text = if json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.text()
    };
    // A closed pipe (`| head`) is not worth a panic.
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
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
