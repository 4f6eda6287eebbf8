//! What each subcommand does, given its parsed flags: the top of the library, the only
//! layer that reads [`crate::cli`] types. `main.rs` calls one of these and prints the error.

mod access;
pub mod report;
mod serve;
mod tabs;
mod token;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

pub use report::report;
pub use serve::Server;
pub use tabs::tabs;
pub use token::token;

use crate::bench::{self, BenchCommand};
use crate::browser::{LabBrowser, QuicOrigin};
use crate::cli::{BrowserArgs, CertArgs, ServeArgs, ShotArgs};
use crate::server::{certs, shutdown};

/// `sselab serve`: bind, print where to look, serve until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let server = Server::bind(&args)?;
    // Installed before the banner: whoever reads it may send SIGTERM at once.
    let signal = shutdown::shutdown_signal();
    // Whoever reads the banner may stop after the lines it wants (tests read the listeners);
    // a closed stdout is no reason to stop serving, so the write's error is not a panic.
    let _ = writeln!(std::io::stdout(), "{}", server.banner());
    server.serve(signal).await
}

/// The SPKI hash of the certificate in `dir`, or `None` when there is none. A file that is
/// there but broken is an error naming it: ignored, it would show up later as a browser that
/// does not trust the server, with nothing pointing at the file.
fn trusted_spki(dir: &Path) -> anyhow::Result<Option<String>> {
    let cert = dir.join(certs::CERT_FILE);
    let key = dir.join(certs::KEY_FILE);
    if !cert.exists() && !key.exists() {
        return Ok(None);
    }
    let material = certs::load(&cert, &key).with_context(|| {
        format!(
            "the browser cannot trust the certificate in --cert-dir {} (`sselab cert` writes a new one)",
            dir.display()
        )
    })?;
    Ok(Some(material.spki_sha256))
}

/// The browser `--browser` names, trusting the certificate in `--cert-dir` when there is one;
/// QUIC off, or on for the one origin `quic` names.
async fn launch(args: &BrowserArgs, quic: Option<&QuicOrigin>) -> anyhow::Result<LabBrowser> {
    let spki = trusted_spki(&args.cert_dir)?;
    LabBrowser::launch_with_quic(args.engine, spki.as_deref(), quic).await
}

/// `sselab shot`: a PNG of a page after it settled.
pub async fn shot(args: ShotArgs) -> anyhow::Result<()> {
    let browser = launch(&args.browser, None).await?;
    let result = browser
        .screenshot(&args.url, Duration::from_secs(args.wait), &args.out)
        .await;
    browser.close().await;
    result?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// `sselab bench MODE`: run the load generator in that mode and print its report (text, or
/// JSON with --json).
pub async fn bench(mode: BenchCommand) -> anyhow::Result<()> {
    let json = mode.shared().json;
    let text = match mode {
        BenchCommand::Load(args) => {
            let report = bench::load::run(args).await?;
            rendered(json, &report, || report.text())?
        }
        BenchCommand::Reconnect(args) => {
            let report = bench::reconnect::run(args).await?;
            rendered(json, &report, || report.text())?
        }
        BenchCommand::Storm(args) => {
            let report = bench::storm::run(args).await?;
            rendered(json, &report, || report.text())?
        }
        BenchCommand::Attack(args) => {
            let report = bench::attack::run(args).await?;
            rendered(json, &report, || report.text())?
        }
    };
    // A closed pipe (`| head`) is not worth a panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// A report as pretty JSON, or as its text.
fn rendered(
    json: bool,
    report: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    Ok(match json {
        true => serde_json::to_string_pretty(report)? + "\n",
        false => text(),
    })
}

/// `sselab cert`: write a fresh certificate and print how to trust it.
pub fn cert(args: &CertArgs) -> anyhow::Result<()> {
    let request = certs::CertRequest {
        dir: &args.cert_dir,
        extra_sans: &args.sans,
        regenerate: true,
    };
    let material = certs::generate(&args.cert_dir, &request.names())?;
    println!("{}", certs::trust_instructions(&material));
    Ok(())
}
