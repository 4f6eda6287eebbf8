//! Debian's Chromium, headless, driven over the DevTools protocol (chromiumoxide). CDP gives
//! each response's protocol and the browser's own connection id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::EventResponseReceived;
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, EventLoadEventFired, SetWebLifecycleStateParams,
    SetWebLifecycleStateState,
};
use chromiumoxide::cdp::browser_protocol::target::{CloseTargetParams, GetTargetsParams};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;

use super::http3::QuicOrigin;
use super::{ResponseSeen, find_executable};

/// Executables tried in order when `SSELAB_CHROMIUM` is not set.
const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Find Chromium, or say exactly how to get it.
pub fn find_chromium() -> anyhow::Result<PathBuf> {
    find_executable(
        "SSELAB_CHROMIUM",
        &CHROMIUM_NAMES,
        "install Debian's package (`apt-get install -y chromium`, which scripts/test.sh does)",
    )
}

/// One headless Chromium with a fresh profile, closed on drop.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Start headless Chromium trusting the certificate with this SPKI hash (if any), with
    /// QUIC off, or forced on for one origin (`quic`, which needs the SPKI hash: see
    /// [`super::http3`]).
    pub async fn launch(
        spki_sha256: Option<&str>,
        quic: Option<&QuicOrigin>,
    ) -> anyhow::Result<Self> {
        let executable = find_chromium()?;
        let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
        // chromiumoxide adds the leading `--` itself.
        let args = [
            "disable-gpu",
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
        builder = match quic {
            None => builder.arg("disable-quic"),
            Some(origin) => {
                let (switch, value) = origin.chromium_switch();
                builder.arg((switch, value.as_str()))
            }
        };
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
        self.browser
            .new_page(url)
            .await
            .with_context(|| format!("opening {url}"))
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

impl Drop for Chromium {
    fn drop(&mut self) {
        self.handler.abort();
    }
}

/// Evaluate `expression` (awaiting a promise) and give its value as JSON.
pub async fn evaluate(page: &Page, expression: &str) -> anyhow::Result<serde_json::Value> {
    let result = page.evaluate(expression).await?;
    Ok(result.into_value().unwrap_or(serde_json::Value::Null))
}

/// Run `navigation` (a script that sets `location.href`) and wait for CDP's load event: a page that is navigating does not answer
/// evaluations until its navigation is done, which is what a caller times.
pub async fn load(page: &Page, navigation: String) -> anyhow::Result<()> {
    let mut loads = page.event_listener::<EventLoadEventFired>().await?;
    page.evaluate(navigation).await?;
    loads.next().await.context("the tab closed")?;
    Ok(())
}

/// Freeze or thaw the page as Chrome does a long-hidden tab (`Page.setWebLifecycleState`).
pub async fn set_frozen(page: &Page, frozen: bool) -> anyhow::Result<()> {
    let state = if frozen {
        SetWebLifecycleStateState::Frozen
    } else {
        SetWebLifecycleStateState::Active
    };
    page.execute(SetWebLifecycleStateParams::new(state)).await?;
    Ok(())
}

/// A PNG of the whole page.
pub async fn screenshot(page: &Page, out: &Path) -> anyhow::Result<()> {
    let params = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .full_page(true)
        .build();
    page.save_screenshot(params, out)
        .await
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Every response this tab receives from now on: url, protocol, CDP's connection id.
pub async fn responses(
    page: &Page,
) -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<ResponseSeen>> {
    let mut events = page.event_listener::<EventResponseReceived>().await?;
    let (found, responses) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let response = &event.response;
            let seen = ResponseSeen {
                url: response.url.clone(),
                protocol: response.protocol.clone(),
                connection: Some(response.connection_id as u64),
            };
            if found.send(seen).is_err() {
                break;
            }
        }
    });
    Ok(responses)
}
