//! A real browser, headless: Debian's Chromium over the DevTools protocol ([`chromium`]),
//! Debian's Firefox ESR over WebDriver BiDi ([`firefox`]) or WebKitGTK's MiniBrowser over
//! WebDriver classic ([`webkit`], on a private Xvfb), behind one small interface
//! ([`LabBrowser`], [`Tab`]) — the same engines a person uses, so their connection limits are
//! the real ones (WebKitGTK's are libsoup's: Safari's network code is Apple's CFNetwork).
//!
//! All tabs share one profile, and so one socket pool: that is what makes the 6-per-host
//! limit of HTTP/1.1 visible (separate profiles, browsers or contexts
//! ([`LabBrowser::context`]) would each get their own 6).
//! Used by `sselab tabs` (and `scripts/open_tabs.sh --headless`), `sselab shot`, and the
//! real-browser tests. It reads the truth from the browser: the page's EventSource events and
//! each response's protocol (CDP `Network.responseReceived`, BiDi `network.responseStarted`).
//! Connections come from CDP's connection ids in Chromium; BiDi has none, so in Firefox they
//! come from the server's connection ids the pages' `connected` events carry
//! ([`ConnectionSource`]). Classic WebDriver has no network events at all: in WebKit the
//! protocol comes from those events too. With the tabs open, [`LabBrowser::probe`] times what
//! else their origin still serves; [`Tab::open_event_sources`] opens many streams in one page
//! and counts them by the server's connection ids; [`installed`] names each engine's executable
//! and version.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::sync::lock;

mod bidi;
mod cdp;
pub mod chromium;
pub mod firefox;
pub mod http3;
pub mod installed;
mod probe;
mod process;
mod settle;
mod streams;
mod webdriver;
pub mod webkit;
mod wsrpc;

pub use http3::QuicOrigin;
pub use probe::{Probe, ProbeTime};
pub use streams::PageStreams;

/// The clock page (`?timeout=3&retry=1500`) has reconnected once and received two ticks after
/// the one its reconnect named in Last-Event-ID: a script for [`eval`] to poll.
pub const RECONNECTED_AND_TICKING: &str = "window.sselab && window.sselab.opens >= 2 && \
    window.sselab.events > window.sselab.ids.indexOf(window.sselab.lastEventIdSent[1]) + 2";

/// Which browser drives the tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Debian's `chromium`, over the DevTools protocol.
    Chromium,
    /// Debian's `firefox-esr`, over WebDriver BiDi.
    Firefox,
    /// WebKitGTK's MiniBrowser (`webkit2gtk-driver`), over WebDriver classic, under Xvfb.
    Webkit,
}

impl Engine {
    /// Why this engine cannot speak HTTP/3 at all, if it cannot (WebKitGTK: no QUIC in
    /// libsoup); `None` for an engine that can be told to.
    pub fn without_http3(self) -> Option<&'static str> {
        match self {
            Engine::Chromium | Engine::Firefox => None,
            Engine::Webkit => Some(webkit::NO_HTTP3),
        }
    }

    pub const ALL: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::Webkit];
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
            Engine::Webkit => "webkit",
        })
    }
}

/// Find an executable: `env_var` when set, else the first of `names` on `PATH`; or say how
/// to get it.
fn find_executable(env_var: &str, names: &[&str], install: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = executable_from_env(env_var)? {
        return Ok(path);
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "{} not found (tried {names:?} on PATH): {install} or set {env_var}",
        names[0]
    )
}

/// The file `env_var` names, when it is set; an error when it names no file.
fn executable_from_env(env_var: &str) -> anyhow::Result<Option<PathBuf>> {
    let Some(path) = std::env::var_os(env_var) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    if !path.is_file() {
        bail!("{env_var}={} is not a file", path.display());
    }
    Ok(Some(path))
}

/// One headless browser with a fresh profile.
pub enum LabBrowser {
    // Boxed: both handles are large, and a browser is made once per run.
    Chromium(Box<chromium::Chromium>),
    Firefox(Box<firefox::Firefox>),
    Webkit(Box<webkit::Webkit>),
}

/// One tab of a [`LabBrowser`].
#[derive(Clone)]
pub enum Tab {
    Chromium(chromium::ChromiumTab),
    Firefox(firefox::FirefoxTab),
    Webkit(webkit::WebkitTab),
}

/// A response a tab received: its URL, protocol and, where the driver knows it, connection.
#[derive(Debug, Clone)]
pub struct ResponseSeen {
    pub url: String,
    pub protocol: Option<String>,
    pub connection: Option<u64>,
}

/// Where a [`TabsReport`]'s connection count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConnectionSource {
    /// CDP's connection id on each stream response (Chromium).
    Browser,
    /// The server's connection id in each page's `connected` event (Firefox: BiDi has none;
    /// WebKit: classic WebDriver has no network events).
    Server,
}

impl fmt::Display for ConnectionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionSource::Browser => {
                "the browser's connection ids (CDP Network.responseReceived)"
            }
            ConnectionSource::Server => {
                "the server's connection ids (each tab's `connected` event; the driver has none)"
            }
        })
    }
}

/// How one tab's clock page got on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TabState {
    /// The page's EventSource is open now (a stream that opened and then lost its
    /// connection is waiting again, so it does not count).
    pub open: bool,
    pub events: u64,
    /// The stream response's protocol (`http/1.1`, `h2`, `h3`), when the response came: from
    /// the browser, or in WebKit from the server (see [`TabsReport::protocols_from`]).
    pub protocol: Option<String>,
    /// The stream's connection id (see [`ConnectionSource`]).
    pub connection: Option<u64>,
}

/// N tabs of one page, read after they settled.
#[derive(Debug, Clone, Serialize)]
pub struct TabsReport {
    pub tabs: Vec<TabState>,
    /// How long the tabs took to settle (ms after their navigations started); `None` when the
    /// longest wait ran out first and they were read as they were.
    pub settled_ms: Option<u64>,
    pub open: usize,
    pub pending: usize,
    /// Distinct protocols of the open streams, joined by `+` (`none` when nothing opened).
    pub protocol: String,
    /// Distinct connections carrying the open streams.
    pub connections: usize,
    pub connections_from: ConnectionSource,
    /// Where the protocols come from: the browser's responses, or (WebKit) the server.
    pub protocols_from: ConnectionSource,
}

impl TabsReport {
    /// The one line `open_tabs.sh --headless` ends with.
    pub fn line(&self) -> String {
        format!(
            "open={} pending={} protocol={} connections={}",
            self.open, self.pending, self.protocol, self.connections
        )
    }
}

/// N tabs of one page, still open, and what they did when they settled.
pub struct OpenTabs {
    pub report: TabsReport,
    /// The page they opened.
    url: String,
    pages: Vec<Tab>,
}

impl OpenTabs {
    /// The tabs, in the order of [`TabsReport::tabs`].
    pub fn tabs(&self) -> &[Tab] {
        &self.pages
    }
}

impl LabBrowser {
    /// Start `engine` headless, QUIC off; `spki_sha256` is the certificate to trust (Chromium
    /// trusts that hash; Firefox and WebKit, given one, accept insecure certificates for the
    /// session).
    pub async fn launch(engine: Engine, spki_sha256: Option<&str>) -> anyhow::Result<Self> {
        Self::launch_with_quic(engine, spki_sha256, None).await
    }

    /// [`launch`](Self::launch), but with `quic` naming the one origin to reach over HTTP/3
    /// (everything else stays on TCP); `None` is QUIC off. WebKit refuses any `quic`: its
    /// libsoup has no HTTP/3.
    pub async fn launch_with_quic(
        engine: Engine,
        spki_sha256: Option<&str>,
        quic: Option<&QuicOrigin>,
    ) -> anyhow::Result<Self> {
        Ok(match engine {
            Engine::Chromium => Self::Chromium(Box::new(
                chromium::Chromium::launch(spki_sha256, quic).await?,
            )),
            Engine::Firefox => Self::Firefox(Box::new(
                firefox::Firefox::launch(spki_sha256.is_some(), quic).await?,
            )),
            Engine::Webkit => Self::Webkit(Box::new(
                webkit::Webkit::launch(spki_sha256.is_some(), quic).await?,
            )),
        })
    }

    /// A fresh, isolated context of this browser (CDP `Target.createBrowserContext`, BiDi
    /// `browser.createUserContext`, in WebKit a new session with its own MiniBrowser: its own
    /// cookies, cache and connections), as a browser whose tabs open there. Closing it closes
    /// the context, not the browser.
    pub async fn context(&self) -> anyhow::Result<Self> {
        Ok(match self {
            Self::Chromium(browser) => Self::Chromium(Box::new(browser.context().await?)),
            Self::Firefox(browser) => Self::Firefox(Box::new(browser.context().await?)),
            Self::Webkit(browser) => Self::Webkit(Box::new(browser.context().await?)),
        })
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Chromium(_) => Engine::Chromium,
            Self::Firefox(_) => Engine::Firefox,
            Self::Webkit(_) => Engine::Webkit,
        }
    }

    /// A new tab showing `url`, loaded.
    pub async fn page(&self, url: &str) -> anyhow::Result<Tab> {
        match self {
            Self::Chromium(browser) => {
                let tab = browser.new_tab().await?;
                if url != "about:blank" {
                    tab.navigate(url).await?;
                }
                Ok(Tab::Chromium(tab))
            }
            Self::Firefox(browser) => {
                let tab = browser.new_tab().await?;
                if url != "about:blank" {
                    tab.navigate(url, "complete").await?;
                }
                Ok(Tab::Firefox(tab))
            }
            Self::Webkit(browser) => {
                let tab = Tab::Webkit(browser.new_tab().await?);
                if url != "about:blank" {
                    tab.load(url).await?;
                }
                Ok(tab)
            }
        }
    }

    /// Open `tabs` tabs of `url` in this profile and report what opened once they settled
    /// (every tab ticking, or none changing for a quiet spell: the rule is in `settle.rs`),
    /// waiting `settle` at most. Tabs are sent on their way without waiting for their pages,
    /// so a tab whose page is queued behind the connection limit does not block the others.
    /// They stay open until the browser closes.
    pub async fn open_tabs(
        &self,
        url: &str,
        tabs: usize,
        settle: Duration,
    ) -> anyhow::Result<OpenTabs> {
        let mut pages = Vec::with_capacity(tabs);
        let mut seen = Vec::with_capacity(tabs);
        // Dropped on the way out, however it goes: the watchers stop with it.
        let mut watchers = JoinSet::new();
        for _ in 0..tabs {
            let page = self.page("about:blank").await?;
            let stream: Arc<Mutex<Option<ResponseSeen>>> = Arc::default();
            let mut responses = page.responses().await?;
            let record = stream.clone();
            watchers.spawn(async move {
                while let Some(response) = responses.recv().await {
                    if response.url.contains("/sse/") {
                        *lock(&record) = Some(response);
                    }
                }
            });
            pages.push(page);
            seen.push(stream);
        }
        // One after another: all at once, Firefox lets more of the pages past its per-host
        // limit (page loads are urgent-start requests; measured: 9 streams open instead of
        // 6 or 7), and the streams then reuse those connections.
        for page in &pages {
            page.start_navigation(url)
                .await
                .context("starting a tab's navigation")?;
        }
        let settled = settle::settle(&pages, settle).await;

        let source = self.connection_source();
        let protocols_from = self.protocol_source();
        let states = settled
            .tabs
            .into_iter()
            .zip(&seen)
            .map(|((stage, clock), stream)| {
                let response = lock(stream).clone();
                let connection = match source {
                    ConnectionSource::Browser => response.as_ref().and_then(|r| r.connection),
                    ConnectionSource::Server => clock.as_ref().and_then(|c| c.connection),
                };
                let protocol = match protocols_from {
                    ConnectionSource::Browser => response.and_then(|r| r.protocol),
                    ConnectionSource::Server => clock.as_ref().and_then(|c| c.protocol.clone()),
                };
                TabState {
                    open: stage.is_open(),
                    events: clock.map_or(0, |c| c.events),
                    protocol: protocol.map(|p| normalise_protocol(&p)),
                    connection,
                }
            })
            .collect();
        // The tabs go with the browser; closing them one by one would only hand the freed
        // connections to the waiting tabs for a moment.
        let settled_ms = settled.after.map(|after| after.as_millis() as u64);
        Ok(OpenTabs {
            report: report(states, source, protocols_from, settled_ms),
            url: url.to_string(),
            pages,
        })
    }

    /// Where this engine's connection counts come from.
    pub fn connection_source(&self) -> ConnectionSource {
        match self {
            Self::Chromium(_) => ConnectionSource::Browser,
            Self::Firefox(_) | Self::Webkit(_) => ConnectionSource::Server,
        }
    }

    /// Where this engine's stream protocols come from: the browser's own response events, or
    /// in WebKit (classic WebDriver has none) the server's `connected` event.
    pub fn protocol_source(&self) -> ConnectionSource {
        match self {
            Self::Chromium(_) | Self::Firefox(_) => ConnectionSource::Browser,
            Self::Webkit(_) => ConnectionSource::Server,
        }
    }

    /// Save a PNG of `url` after `wait`.
    pub async fn screenshot(&self, url: &str, wait: Duration, out: &Path) -> anyhow::Result<()> {
        let page = match self {
            // A background tab of MiniBrowser is never painted: a window of its own is.
            Self::Webkit(browser) => {
                let window = Tab::Webkit(browser.new_window().await?);
                window.load(url).await?;
                window
            }
            _ => self.page(url).await?,
        };
        tokio::time::sleep(wait).await;
        let png = match &page {
            Tab::Chromium(tab) => tab.screenshot().await?,
            Tab::Firefox(tab) => tab.screenshot().await?,
            Tab::Webkit(tab) => tab.screenshot().await?,
        };
        let png = base64::engine::general_purpose::STANDARD
            .decode(png)
            .context("decoding the screenshot")?;
        std::fs::write(out, png).with_context(|| format!("writing {}", out.display()))
    }

    pub async fn close(self) {
        match self {
            Self::Chromium(browser) => (*browser).close().await,
            Self::Firefox(browser) => (*browser).close().await,
            Self::Webkit(browser) => (*browser).close().await,
        }
    }

    /// Stop every SharedWorker this browser runs (as if it crashed); gives how many.
    /// Chromium only: WebDriver BiDi lists a shared worker's realm (`script.getRealms`) but
    /// has no command that ends it, and WebDriver classic does not see workers.
    pub async fn stop_shared_workers(&self) -> anyhow::Result<usize> {
        match self {
            Self::Chromium(browser) => browser.stop_shared_workers().await,
            Self::Firefox(_) => {
                bail!("WebDriver BiDi has no command to stop a SharedWorker (Chromium only)")
            }
            Self::Webkit(_) => {
                bail!("WebDriver classic has no command to stop a SharedWorker (Chromium only)")
            }
        }
    }
}

impl Tab {
    /// Evaluate `expression` (awaiting a promise) and give its value as JSON.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<serde_json::Value> {
        match self {
            Tab::Chromium(tab) => tab.evaluate(expression).await,
            Tab::Firefox(tab) => tab.evaluate(expression).await,
            Tab::Webkit(tab) => tab.evaluate(expression).await,
        }
        .with_context(|| format!("evaluating {expression}"))
    }

    /// Send the tab to `url` and return before the page comes. From JavaScript, in every
    /// engine: BiDi's `browsingContext.navigate` with `wait: none` still waits for the
    /// request to start, which a page queued behind a full connection never does.
    pub async fn start_navigation(&self, url: &str) -> anyhow::Result<()> {
        self.evaluate(&navigation(url)?).await?;
        Ok(())
    }

    /// Send the tab to `url` and wait for its load event.
    pub async fn load(&self, url: &str) -> anyhow::Result<()> {
        match self {
            Tab::Chromium(tab) => tab.load(&navigation(url)?).await,
            Tab::Firefox(tab) => tab.navigate(url, "complete").await,
            Tab::Webkit(tab) => tab.load(&navigation(url)?).await,
        }
    }

    /// Every response this tab receives from now on.
    pub async fn responses(
        &self,
    ) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<ResponseSeen>> {
        match self {
            Tab::Chromium(tab) => Ok(tab.responses()),
            Tab::Firefox(tab) => Ok(tab.responses()),
            Tab::Webkit(tab) => Ok(tab.responses()),
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Tab::Chromium(tab) => tab.close().await,
            Tab::Firefox(tab) => tab.close().await,
            Tab::Webkit(tab) => tab.close().await,
        }
    }

    /// Bring this tab to the front: the others become hidden.
    pub async fn bring_to_front(&self) -> anyhow::Result<()> {
        match self {
            Tab::Chromium(tab) => tab.bring_to_front().await,
            Tab::Firefox(tab) => tab.activate().await,
            Tab::Webkit(_) => bail!(
                "WebDriver classic cannot bring a MiniBrowser tab to the front (switching to it \
                 does not show it)"
            ),
        }
    }

    /// Freeze or thaw the page as Chrome does a long-hidden tab. Chromium only (CDP
    /// `Page.setWebLifecycleState`): WebDriver BiDi has no page lifecycle command.
    pub async fn set_frozen(&self, frozen: bool) -> anyhow::Result<()> {
        match self {
            Tab::Chromium(tab) => tab.set_frozen(frozen).await,
            Tab::Firefox(_) => bail!("WebDriver BiDi cannot freeze a page (Chromium only)"),
            Tab::Webkit(_) => bail!("WebDriver classic cannot freeze a page (Chromium only)"),
        }
    }
}

/// The script that sends a tab to `url`.
fn navigation(url: &str) -> anyhow::Result<String> {
    Ok(format!(
        "location.href = {}; true",
        serde_json::to_string(url)?
    ))
}

/// Evaluate `expression` in the page and read its value as JSON.
pub async fn eval<T: DeserializeOwned>(page: &Tab, expression: &str) -> anyhow::Result<T> {
    let wrapped = format!("JSON.stringify({expression})");
    let result = page.evaluate(&wrapped).await?;
    let json = result
        .as_str()
        .with_context(|| format!("{expression} gave no JSON: {result}"))?;
    serde_json::from_str(json).with_context(|| format!("parsing the value of {expression}"))
}

/// Each engine's name for a protocol, as Chromium's ALPN-style ids (`http/1.1`, `h2`, `h3`).
fn normalise_protocol(protocol: &str) -> String {
    let lower = protocol.to_ascii_lowercase();
    match lower.as_str() {
        "http/2" | "http/2.0" | "h2" => "h2".into(),
        "http/1.1" | "http/1" => "http/1.1".into(),
        "http/3" | "http/3.0" | "h3" => "h3".into(),
        _ => lower,
    }
}

fn report(
    tabs: Vec<TabState>,
    connections_from: ConnectionSource,
    protocols_from: ConnectionSource,
    settled_ms: Option<u64>,
) -> TabsReport {
    let open: Vec<&TabState> = tabs.iter().filter(|t| t.open).collect();
    let protocols: BTreeSet<&str> = open.iter().filter_map(|t| t.protocol.as_deref()).collect();
    let connections: BTreeSet<u64> = open.iter().filter_map(|t| t.connection).collect();
    TabsReport {
        open: open.len(),
        pending: tabs.len() - open.len(),
        protocol: if protocols.is_empty() {
            "none".into()
        } else {
            protocols.into_iter().collect::<Vec<_>>().join("+")
        },
        connections: connections.len(),
        connections_from,
        protocols_from,
        settled_ms,
        tabs,
    }
}
