//! The cells of the matrix: what each measures, how long it may take, how often it runs, and
//! the browser profile it runs in. One file per kind of measurement.

mod cross_site;
mod engine_cap;
mod reconnect;
mod refusal;
mod tabs;

use std::time::{Duration, Instant};

use anyhow::Context;

use super::model::Run;
use super::servers::{Lab, Servers};
use crate::browser::{Engine, LabBrowser, QuicOrigin, Tab, eval};
use crate::cli::CellId;

/// What a cell needs to run in one engine.
pub struct Bench<'a> {
    pub engine: Engine,
    /// The engine over TCP (QUIC off), trusting the servers' certificate.
    pub browser: &'a LabBrowser,
    pub servers: &'a Servers,
    pub quick: bool,
}

/// How a cell runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub title: &'static str,
    /// The longest it may take, every repeat included, before it counts as failed.
    pub bound: Duration,
    /// About how long it takes here, for the progress bar's ETA.
    pub estimate: Duration,
    /// Runs, each in a fresh profile.
    pub repeats: usize,
}

pub fn plan(cell: CellId, quick: bool) -> Plan {
    let repeats = if quick { 1 } else { 3 };
    let secs = Duration::from_secs;
    // Tabs: launching a context, settling (a few seconds), the probe (its timeout when blocked).
    let tabs = |title, blocked_probe: bool| Plan {
        title,
        bound: secs(45) * repeats as u32,
        // Measured here: a blocked probe costs its timeout (3 s quick, 5 s full).
        estimate: secs(match (blocked_probe, quick) {
            (false, _) => 5,
            (true, true) => 8,
            (true, false) => 11,
        }) * repeats as u32,
        repeats,
    };
    match cell {
        CellId::TabsH1 => tabs("10 tabs, plain HTTP/1.1, then the probe", true),
        CellId::TabsH1tls => tabs("10 tabs, TLS + HTTP/1.1 only, then the probe", true),
        CellId::TabsH2 => tabs("10 tabs, HTTP/2, then the probe", false),
        CellId::TabsH3 => Plan {
            // A browser of its own per run, with QUIC forced on for the origin.
            estimate: secs(8) * repeats as u32,
            bound: secs(60) * repeats as u32,
            ..tabs("10 tabs, HTTP/3, then the probe", false)
        },
        CellId::CapH2 => tabs(
            "10 tabs at the server's HTTP/2 stream cap (5), then the probe",
            true,
        ),
        CellId::CapH3 => Plan {
            estimate: secs(if quick { 12 } else { 15 }) * repeats as u32,
            bound: secs(60) * repeats as u32,
            ..tabs(
                "10 tabs at the server's QUIC stream cap (5), then the probe",
                true,
            )
        },
        CellId::EngineCapH2 => Plan {
            title: "the engine's own cap on streams per HTTP/2 connection",
            bound: secs(60),
            estimate: secs(4),
            repeats: 1,
        },
        CellId::Reconnect => Plan {
            title: "`?timeout=3&retry=1500`: reconnect delay and Last-Event-ID",
            bound: secs(30),
            estimate: secs(7),
            // The repeats run side by side in one profile (reconnect.rs).
            repeats: 1,
        },
        CellId::CrossSite => Plan {
            title: "pages of two sites, streams to one third HTTP/1.1 host",
            bound: secs(45),
            estimate: secs(6),
            repeats: 1,
        },
        CellId::Refusal => Plan {
            title: "a 503 against sselab's refusal stream, on a full slot group",
            bound: secs(40),
            estimate: secs(7),
            repeats: 1,
        },
    }
}

/// Why `engine` cannot do what `cell` measures at all, when it cannot (HTTP/3 in WebKitGTK).
pub fn unsupported(cell: CellId, engine: Engine) -> Option<&'static str> {
    match cell {
        CellId::TabsH3 | CellId::CapH3 => engine.without_http3(),
        _ => None,
    }
}

/// Why `cell` cannot run against these servers, when it cannot.
pub fn unavailable(cell: CellId, servers: &Servers) -> Option<String> {
    let need = |lab: &Result<Lab, String>| lab.as_ref().err().cloned();
    match cell {
        CellId::CapH2 | CellId::CapH3 => need(&servers.capped),
        CellId::EngineCapH2 => need(&servers.wide),
        CellId::CrossSite => need(&servers.second_site),
        _ => None,
    }
}

/// The server a cell runs against (a server [`unavailable`] did not rule out).
fn lab(cell: CellId, servers: &Servers) -> anyhow::Result<&Lab> {
    let lab = match cell {
        CellId::CapH2 | CellId::CapH3 => &servers.capped,
        CellId::EngineCapH2 => &servers.wide,
        _ => return Ok(&servers.main),
    };
    lab.as_ref().map_err(|why| anyhow::anyhow!("{why}"))
}

/// The origin `cell` opens its pages or streams at: the listener it is about.
fn origin(cell: CellId, lab: &Lab) -> anyhow::Result<&str> {
    let (origin, what) = match cell {
        CellId::TabsH1tls => (&lab.https_h1, "an HTTPS HTTP/1.1-only listener"),
        CellId::TabsH2 | CellId::CapH2 | CellId::EngineCapH2 => (&lab.https, "an HTTPS listener"),
        CellId::TabsH3 | CellId::CapH3 => (&lab.h3, "an HTTP/3 listener"),
        CellId::TabsH1 | CellId::Reconnect | CellId::CrossSite | CellId::Refusal => {
            (&lab.http, "a plain HTTP listener")
        }
    };
    origin
        .as_deref()
        .with_context(|| format!("the server has no {what}"))
}

/// A fresh profile for one run of `cell`: its own cookies, cache and connections. Over
/// HTTP/3 a browser of its own with QUIC forced on for the origin; otherwise a new context of
/// the engine's browser, or, for an engine without contexts, a new browser.
pub async fn profile(cell: CellId, bench: &Bench<'_>) -> anyhow::Result<LabBrowser> {
    let spki = bench.servers.spki.as_deref();
    if let CellId::TabsH3 | CellId::CapH3 = cell {
        let quic = QuicOrigin::of_url(origin(cell, lab(cell, bench.servers)?)?)?;
        return LabBrowser::launch_with_quic(bench.engine, spki, Some(&quic)).await;
    }
    match bench.browser.context().await {
        Ok(context) => Ok(context),
        Err(_) => LabBrowser::launch(bench.engine, spki).await,
    }
}

/// One run of `cell` in `profile`.
pub async fn measure(
    cell: CellId,
    profile: &LabBrowser,
    bench: &Bench<'_>,
) -> anyhow::Result<Vec<Run>> {
    let lab = lab(cell, bench.servers)?;
    let origin = origin(cell, lab)?;
    match cell {
        CellId::TabsH1
        | CellId::TabsH1tls
        | CellId::TabsH2
        | CellId::TabsH3
        | CellId::CapH2
        | CellId::CapH3 => tabs::run(profile, lab, origin, bench.quick).await,
        CellId::EngineCapH2 => engine_cap::run(profile, lab, origin).await,
        CellId::Reconnect => reconnect::run(profile, origin, bench.quick).await,
        CellId::CrossSite => {
            let second = bench
                .servers
                .second_site
                .as_ref()
                .map_err(|why| anyhow::anyhow!("{why}"))?;
            cross_site::run(profile, lab, origin, second).await
        }
        CellId::Refusal => refusal::run(profile, origin, bench.engine).await,
    }
}

/// Poll `expression` in `page` until it is truthy, failing after `within`.
async fn until(page: &Tab, expression: &str, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if eval::<bool>(page, &format!("!!({expression})"))
            .await
            .unwrap_or(false)
        {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "not within {} s: {expression}",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
