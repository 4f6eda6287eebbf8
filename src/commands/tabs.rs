//! `sselab tabs`: N tabs of one page in one headless browser profile (`--browser`); one line per tab,
//! then the summary line `open=N pending=M protocol=P connections=C [probe_fetch=…
//! probe_nav=…] server_streams=S`. The browser's side comes from the browser; the
//! server's side (`server_streams`) from the server's own counters, read while the tabs
//! are still open. With `--proto h3` the browser reaches the page over QUIC; the counters
//! are still read over TCP (`--stats-from`, by default the HTTPS listener on the same port
//! number), so the reading needs no HTTP/3 client and holds no stream on the QUIC side.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use http::Uri;

use super::launch;
use crate::browser::{ConnectionSource, LabBrowser, Probe, ProbeTime, QuicOrigin, TabsReport};
use crate::cli::{TabsArgs, TabsProto};
use crate::client;
use crate::server::certs;

/// How long reading the server's counters may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// What one run of `sselab tabs` saw.
struct Measured {
    tabs: TabsReport,
    server_streams: anyhow::Result<u64>,
    probe: Option<Probe>,
}

pub async fn tabs(args: TabsArgs) -> anyhow::Result<()> {
    let url = args.page_url();
    let quic = match args.proto {
        TabsProto::Tcp => None,
        TabsProto::H3 => Some(QuicOrigin::of_url(&url).context("--proto h3 --url")?),
    };
    let browser = launch(&args.browser, quic.as_ref()).await?;
    let measured = measure(&browser, &args, &url).await;
    browser.close().await;
    let Measured {
        tabs,
        server_streams,
        probe,
    } = measured?;
    for (index, tab) in tabs.tabs.iter().enumerate() {
        println!(
            "tab {:>3}: {:<7} events={:<4} protocol={:<8} connection={}",
            index + 1,
            if tab.open { "open" } else { "pending" },
            tab.events,
            tab.protocol.as_deref().unwrap_or("-"),
            tab.connection.map_or("-".into(), |c| c.to_string())
        );
    }
    let protocols_from = match tabs.protocols_from {
        ConnectionSource::Browser => "the browser",
        ConnectionSource::Server => "the server (each tab's `connected` event)",
    };
    println!(
        "{}: protocol from {protocols_from}, connections from {}",
        args.browser.engine, tabs.connections_from
    );
    match tabs.settled_ms {
        Some(ms) => println!("settled {ms} ms after the tabs started"),
        None => println!(
            "not settled within --settle {} s: read as they were",
            args.settle
        ),
    }
    let mut line = tabs.line();
    if let Some(probe) = &probe {
        let timeout = args.probe_timeout;
        println!(
            "probe fetch /proto from a tab: {}",
            explain(&probe.fetch, timeout)
        );
        println!(
            "probe new tab's navigation:    {}",
            explain(&probe.nav, timeout)
        );
        line = format!("{line} {}", probe.fields());
    }
    match server_streams {
        Ok(open) => println!("{line} server_streams={open}"),
        Err(e) => {
            eprintln!("sselab tabs: cannot read the server's stream count: {e:#}");
            println!("{line} server_streams=?");
        }
    }
    Ok(())
}

async fn measure(browser: &LabBrowser, args: &TabsArgs, url: &str) -> anyhow::Result<Measured> {
    let settle = Duration::from_secs(args.settle);
    let tabs = browser.open_tabs(url, args.tabs as usize, settle).await?;
    // Before the probe: its new tab would hold one more stream.
    let stats_from = args.stats_from.as_deref().unwrap_or(url);
    let server_streams = server_streams(stats_from, &args.browser.cert_dir).await;
    let probe = if args.probe {
        let timeout = Duration::from_secs(args.probe_timeout);
        Some(browser.probe(&tabs, timeout).await?)
    } else {
        None
    };
    Ok(Measured {
        tabs: tabs.report,
        server_streams,
        probe,
    })
}

/// A probe result in words.
fn explain(time: &ProbeTime, timeout_secs: u64) -> String {
    match time {
        ProbeTime::Took(ms) => format!("{ms} ms"),
        ProbeTime::Blocked => format!("blocked (no answer within {timeout_secs} s)"),
        ProbeTime::Failed(reason) => format!("failed: {reason}"),
    }
}

/// The server's own count of open SSE streams (`GET /api/stats` on the origin of `from`,
/// the page or `--stats-from`), trusting the certificate in `cert_dir` for https, as the
/// browser does.
async fn server_streams(from: &str, cert_dir: &Path) -> anyhow::Result<u64> {
    let uri: Uri = from
        .parse()
        .with_context(|| format!("{from} is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        anyhow::bail!("{from} needs a scheme and a host");
    };
    let url = format!("{scheme}://{authority}/api/stats");
    let cacert = cert_dir.join(certs::CERT_FILE);
    let body = client::get_body(&url, Some(&cacert), false, STATS_TIMEOUT).await?;
    let stats: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{url}: not JSON"))?;
    stats["streams"]["open_total"]
        .as_u64()
        .with_context(|| format!("{url} has no streams.open_total: is it sselab?"))
}
