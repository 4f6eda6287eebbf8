//! Debian's Chromium, headless, driven over the DevTools protocol (`browser::cdp`). CDP gives
//! each response's protocol and the browser's own connection id.
//!
//! The command line comes from the one function that makes every Chromium command line
//! ([`chromium_switches`]); the browser prints its CDP address on stderr
//! (`DevTools listening on ws://…`). Each tab is a target with its own session, with the
//! `Page` and `Network` domains on from the start, so no response of its page is missed.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::cdp::{self, Cdp, Session};
use super::http3::QuicOrigin;
use super::process::BrowserProcess;
use super::{ResponseSeen, find_executable};
use crate::server::chromium_switches::{ChromiumRun, chromium_switches};

/// Executables tried in order when `SSELAB_CHROMIUM` is not set.
const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// What Chromium prints on stderr once CDP listens (then the browser's WebSocket URL).
const CDP_BANNER: &str = "DevTools listening on ";

/// Find Chromium, or say exactly how to get it.
pub fn find_chromium() -> anyhow::Result<PathBuf> {
    find_executable(
        "SSELAB_CHROMIUM",
        &CHROMIUM_NAMES,
        "install Debian's package (`apt-get install -y chromium`, which scripts/test.sh does)",
    )
}

/// One headless Chromium with a fresh profile, killed on drop; or a handle to one of its
/// browser contexts ([`Chromium::context`]).
pub struct Chromium {
    cdp: Cdp,
    /// The browser context this handle's tabs open in; `None`: the browser's default one.
    context: Option<String>,
    /// The process, on the handle that launched it.
    process: Option<BrowserProcess>,
}

/// One tab: its target and the session that drives it.
#[derive(Clone)]
pub struct ChromiumTab {
    cdp: Cdp,
    target: String,
    session: Session,
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
        let profile_dir = profile
            .path()
            .to_str()
            .with_context(|| format!("{} is not UTF-8", profile.path().display()))?;
        let quic_origin = quic.map(QuicOrigin::to_string);
        let switches = chromium_switches(&ChromiumRun {
            profile: profile_dir,
            spki_sha256,
            quic_origin: quic_origin.as_deref(),
            headless: true,
        });
        let (mut process, address) =
            BrowserProcess::start(&executable, switches, &[], profile, CDP_BANNER).await?;
        let (cdp, reader) = cdp::connect(&address).await?;
        process.keep(reader);
        Ok(Self {
            cdp,
            context: None,
            process: Some(process),
        })
    }

    /// A fresh browser context (`Target.createBrowserContext`: its own cookies, cache and
    /// connections), as a handle whose tabs open there; closing it closes only the context.
    pub async fn context(&self) -> anyhow::Result<Self> {
        let created = self
            .cdp
            .command("Target.createBrowserContext", json!({}))
            .await?;
        Ok(Self {
            cdp: self.cdp.clone(),
            context: Some(text(&created, "browserContextId")?),
            process: None,
        })
    }

    /// A new blank tab, its page and network events on.
    pub async fn new_tab(&self) -> anyhow::Result<ChromiumTab> {
        let mut params = json!({"url": "about:blank"});
        if let Some(context) = &self.context {
            params["browserContextId"] = context.as_str().into();
        }
        let created = self.cdp.command("Target.createTarget", params).await?;
        let target = text(&created, "targetId")?;
        let attached = self
            .cdp
            .command(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        let session = Session::new(&self.cdp, text(&attached, "sessionId")?);
        session.command("Page.enable", json!({})).await?;
        session.command("Network.enable", json!({})).await?;
        Ok(ChromiumTab {
            cdp: self.cdp.clone(),
            target,
            session,
        })
    }

    /// Close this handle's context with its tabs, and, on the handle that launched the
    /// browser, the browser (CDP `Browser.close`), waiting for the process.
    pub async fn close(mut self) {
        if let Some(context) = self.context.take() {
            let params = json!({"browserContextId": context});
            let _ = self
                .cdp
                .command("Target.disposeBrowserContext", params)
                .await;
        }
        if let Some(process) = self.process.take() {
            let closing = self.cdp.command("Browser.close", json!({}));
            process.close(closing).await;
        }
    }

    /// Stop every SharedWorker this handle's context runs (as if it crashed); gives how many.
    pub async fn stop_shared_workers(&self) -> anyhow::Result<usize> {
        let targets = self.cdp.command("Target.getTargets", json!({})).await?;
        let workers: Vec<&str> = targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "shared_worker")
            .filter(|t| {
                self.context
                    .as_ref()
                    .is_none_or(|context| t["browserContextId"] == context.as_str())
            })
            .filter_map(|t| t["targetId"].as_str())
            .collect();
        for worker in &workers {
            self.cdp
                .command("Target.closeTarget", json!({"targetId": worker}))
                .await?;
        }
        Ok(workers.len())
    }
}

impl Drop for Chromium {
    /// A context handle dropped unclosed (a test that failed) takes its tabs with it; the
    /// browser itself goes with its `BrowserProcess`.
    fn drop(&mut self) {
        if let Some(context) = self.context.take() {
            let params = json!({"browserContextId": context});
            self.cdp
                .command_and_forget("Target.disposeBrowserContext", params);
        }
    }
}

impl ChromiumTab {
    /// Send the tab to `url` (`Page.navigate`) and wait for its load event; a navigation the
    /// browser could not make (a refused connection, a bad certificate) fails with its reason.
    pub async fn navigate(&self, url: &str) -> anyhow::Result<()> {
        let mut events = self.session.events();
        let navigated = self
            .session
            .command("Page.navigate", json!({"url": url}))
            .await?;
        if let Some(error) = navigated["errorText"].as_str() {
            bail!("navigating to {url}: {error}");
        }
        events
            .next("Page.loadEventFired")
            .await
            .context("the browser closed")?;
        Ok(())
    }

    /// Run `navigation` (a script that sets `location.href`) and wait for the load event: a
    /// page that is navigating does not answer evaluations until its navigation is done, which
    /// is what a caller times.
    pub async fn load(&self, navigation: &str) -> anyhow::Result<()> {
        let mut events = self.session.events();
        self.evaluate(navigation).await?;
        events
            .next("Page.loadEventFired")
            .await
            .context("the browser closed")?;
        Ok(())
    }

    /// Evaluate `expression` (awaiting a promise) and give its value as JSON; a page that
    /// throws is an error.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let params = json!({
            "expression": expression,
            "awaitPromise": true,
            "returnByValue": true,
        });
        let mut answer = self.session.command("Runtime.evaluate", params).await?;
        if let Some(thrown) = answer.get("exceptionDetails") {
            let exception = &thrown["exception"]["description"];
            bail!(
                "the page threw: {}",
                exception
                    .as_str()
                    .or(thrown["text"].as_str())
                    .unwrap_or("?")
            );
        }
        Ok(answer["result"]["value"].take())
    }

    /// Freeze or thaw the page as Chrome does a long-hidden tab (`Page.setWebLifecycleState`).
    pub async fn set_frozen(&self, frozen: bool) -> anyhow::Result<()> {
        let state = if frozen { "frozen" } else { "active" };
        self.session
            .command("Page.setWebLifecycleState", json!({"state": state}))
            .await?;
        Ok(())
    }

    /// Bring this tab to the front (the others become hidden).
    pub async fn bring_to_front(&self) -> anyhow::Result<()> {
        self.session.command("Page.bringToFront", json!({})).await?;
        Ok(())
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        self.cdp
            .command("Target.closeTarget", json!({"targetId": self.target}))
            .await?;
        Ok(())
    }

    /// A PNG of the whole page, base64 (as CDP sends it): the viewport stretched to the
    /// page's size for the shot, as puppeteer's `fullPage` does.
    pub async fn screenshot(&self) -> anyhow::Result<String> {
        self.cdp
            .command("Target.activateTarget", json!({"targetId": self.target}))
            .await?;
        let metrics = self
            .session
            .command("Page.getLayoutMetrics", json!({}))
            .await?;
        let size = &metrics["cssContentSize"];
        let (width, height) = (
            size["width"].as_f64().context("the page's width")?,
            size["height"].as_f64().context("the page's height")?,
        );
        let viewport = json!({
            "width": width.ceil() as u64,
            "height": height.ceil() as u64,
            "deviceScaleFactor": 1,
            "mobile": false,
        });
        self.session
            .command("Emulation.setDeviceMetricsOverride", viewport)
            .await?;
        let clip = json!({"x": 0, "y": 0, "width": width, "height": height, "scale": 1});
        let shot = self
            .session
            .command(
                "Page.captureScreenshot",
                json!({"format": "png", "clip": clip, "captureBeyondViewport": true}),
            )
            .await;
        self.session
            .command("Emulation.clearDeviceMetricsOverride", json!({}))
            .await?;
        text(&shot?, "data")
    }

    /// Every response this tab receives from now on: url, protocol, CDP's connection id.
    pub fn responses(&self) -> tokio::sync::mpsc::UnboundedReceiver<ResponseSeen> {
        let mut events = self.session.events();
        let (found, responses) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.next("Network.responseReceived").await {
                let response = &event["response"];
                let seen = ResponseSeen {
                    url: response["url"].as_str().unwrap_or_default().to_string(),
                    protocol: response["protocol"].as_str().map(str::to_string),
                    connection: response["connectionId"].as_f64().map(|id| id as u64),
                };
                if found.send(seen).is_err() {
                    break;
                }
            }
        });
        responses
    }
}

/// The string field `name` of a CDP answer.
fn text(answer: &Value, name: &str) -> anyhow::Result<String> {
    answer[name]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no {name} in {answer}"))
}
