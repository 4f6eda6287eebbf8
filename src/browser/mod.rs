//! A headless Chromium driven over the DevTools protocol (chromiumoxide): the same browser
//! a person uses, so its connection limits are the real ones.
//!
//! All tabs share one profile, and so one socket pool: that is what makes the 6-per-host
//! limit of HTTP/1.1 visible (separate profiles or browsers would each get their own 6).
//! Used by `sselab tabs` (and `scripts/open_tabs.sh --headless`), `sselab shot`, and the
//! real-browser tests. It reads the truth from the browser: the page's EventSource events and
//! CDP `Network.responseReceived` (protocol, connection id). With the tabs open, [`LabBrowser::probe`]
//! times what else their origin still serves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::EventResponseReceived;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sync::lock;

mod probe;

pub use probe::{Probe, ProbeTime};

/// Executables tried in order when `SSELAB_CHROMIUM` is not set.
const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Find Chromium, or say exactly how to get it.
pub fn find_chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SSELAB_CHROMIUM") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("SSELAB_CHROMIUM={} is not a file", path.display());
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in CHROMIUM_NAMES {
        for dir in &dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "Chromium not found (tried {CHROMIUM_NAMES:?} on PATH): install Debian's package \
         (`apt-get install -y chromium`, which scripts/test.sh does) or set SSELAB_CHROMIUM"
    )
}

/// How long a tab may take to say how its page is doing.
const READ_PATIENCE: Duration = Duration::from_secs(2);

/// One headless Chromium with a fresh profile, closed on drop.
pub struct LabBrowser {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

/// How one tab's clock page got on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TabState {
    /// The page's EventSource is open now (a stream that opened and then lost its
    /// connection is waiting again, so it does not count).
    pub open: bool,
    pub events: u64,
    /// CDP's protocol for the stream's response (`http/1.1`, `h2`), when the response came.
    pub protocol: Option<String>,
    /// CDP's connection id for the stream's response.
    pub connection: Option<u64>,
}

/// N tabs of one page, read after they settled.
#[derive(Debug, Clone, Serialize)]
pub struct TabsReport {
    pub tabs: Vec<TabState>,
    pub open: usize,
    pub pending: usize,
    /// Distinct protocols of the open streams, joined by `+` (`none` when nothing opened).
    pub protocol: String,
    /// Distinct connections carrying the open streams.
    pub connections: usize,
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
    pages: Vec<Page>,
}

/// The protocol and connection CDP reported for a tab's stream response, once it came.
type SeenResponse = Arc<Mutex<Option<(Option<String>, u64)>>>;

/// What the clock page exposes as `window.sselab`.
#[derive(Debug, Deserialize)]
struct ClockPage {
    events: u64,
    /// The EventSource's readyState: 1 is open.
    #[serde(rename = "readyState")]
    ready_state: u8,
}

impl LabBrowser {
    /// Start headless Chromium trusting the certificate with this SPKI hash (if any).
    pub async fn launch(spki_sha256: Option<&str>) -> anyhow::Result<Self> {
        let executable = find_chromium()?;
        let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
        // chromiumoxide adds the leading `--` itself.
        let args = [
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
            "disable-dev-shm-usage",
        ];
        let mut builder = BrowserConfig::builder();
        if let Some(spki) = spki_sha256 {
            builder = builder.arg(("ignore-certificate-errors-spki-list", spki));
        }
        let config = builder
            .chrome_executable(&executable)
            .no_sandbox()
            .respect_https_errors()
            .user_data_dir(profile.path())
            .window_size(1280, 900)
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .args(args)
            .build()
            .map_err(|e| anyhow::anyhow!("Chromium configuration: {e}"))?;
        let (browser, mut handler) = Browser::launch(config)
            .await
            .with_context(|| format!("starting {}", executable.display()))?;
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if event.is_err() {
                    // Unknown or malformed CDP messages from a newer Chromium are not fatal.
                    continue;
                }
            }
        });
        Ok(Self {
            browser,
            handler,
            _profile: profile,
        })
    }

    /// A new tab showing `url`, loaded.
    pub async fn page(&self, url: &str) -> anyhow::Result<Page> {
        let page = self
            .browser
            .new_page(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(page)
    }

    /// Open `tabs` tabs of `url` in this profile, wait `settle`, and report what opened.
    /// Tabs are navigated from JavaScript so a tab whose page is queued behind the
    /// connection limit does not block the others. They stay open until the browser closes.
    pub async fn open_tabs(
        &self,
        url: &str,
        tabs: usize,
        settle: Duration,
    ) -> anyhow::Result<OpenTabs> {
        let mut pages = Vec::with_capacity(tabs);
        let mut watchers = Vec::with_capacity(tabs);
        for _ in 0..tabs {
            let page = self.page("about:blank").await?;
            let seen: SeenResponse = Arc::default();
            let mut responses = page.event_listener::<EventResponseReceived>().await?;
            let record = seen.clone();
            watchers.push(tokio::spawn(async move {
                while let Some(event) = responses.next().await {
                    if event.response.url.contains("/sse/") {
                        let connection = event.response.connection_id as u64;
                        *lock(&record) = Some((event.response.protocol.clone(), connection));
                    }
                }
            }));
            pages.push((page, seen));
        }
        for (page, _) in &pages {
            let go = format!("location.href = {}; true", serde_json::to_string(url)?);
            page.evaluate(go)
                .await
                .context("starting a tab's navigation")?;
        }
        tokio::time::sleep(settle).await;

        let mut states = Vec::with_capacity(tabs);
        for (page, seen) in &pages {
            // A tab still waiting for its page may not answer until the page comes: that
            // is a pending tab, not a reason to wait.
            let asking = eval(page, "window.sselab ?? null");
            let clock: Option<ClockPage> = tokio::time::timeout(READ_PATIENCE, asking)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let (protocol, connection) = lock(seen)
                .clone()
                .map_or((None, None), |(p, c)| (p, Some(c)));
            states.push(TabState {
                open: clock.as_ref().is_some_and(|c| c.ready_state == 1),
                events: clock.map_or(0, |c| c.events),
                protocol,
                connection,
            });
        }
        for watcher in watchers {
            watcher.abort();
        }
        // The tabs go with the browser; closing them one by one would only hand the freed
        // connections to the waiting tabs for a moment.
        Ok(OpenTabs {
            report: report(states),
            url: url.to_string(),
            pages: pages.into_iter().map(|(page, _)| page).collect(),
        })
    }

    /// Save a PNG of `url` after `wait`.
    pub async fn screenshot(&self, url: &str, wait: Duration, out: &Path) -> anyhow::Result<()> {
        let page = self.page(url).await?;
        tokio::time::sleep(wait).await;
        let params = ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(true)
            .build();
        page.save_screenshot(params, out)
            .await
            .with_context(|| format!("writing {}", out.display()))?;
        Ok(())
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        self.handler.abort();
    }

    /// Stop every SharedWorker this browser runs (as if it crashed); gives how many.
    pub async fn stop_shared_workers(&self) -> anyhow::Result<usize> {
        let targets = self.browser.execute(GetTargetsParams::default()).await?;
        let workers: Vec<_> = targets
            .result
            .target_infos
            .iter()
            .filter(|t| t.r#type == "shared_worker")
            .map(|t| t.target_id.clone())
            .collect();
        for worker in &workers {
            self.browser
                .execute(CloseTargetParams::new(worker.clone()))
                .await?;
        }
        Ok(workers.len())
    }
}

impl Drop for LabBrowser {
    fn drop(&mut self) {
        self.handler.abort();
    }
}

/// Evaluate `expression` in the page and read its value as JSON.
pub async fn eval<T: DeserializeOwned>(page: &Page, expression: &str) -> anyhow::Result<T> {
    let wrapped = format!("JSON.stringify({expression})");
    let result = page
        .evaluate(wrapped)
        .await
        .with_context(|| format!("evaluating {expression}"))?;
    let json: String = result
        .into_value()
        .context("reading the evaluation result")?;
    serde_json::from_str(&json).with_context(|| format!("parsing the value of {expression}"))
}

fn report(tabs: Vec<TabState>) -> TabsReport {
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
        tabs,
    }
}
