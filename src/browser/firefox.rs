//! Debian's Firefox ESR, headless, driven over WebDriver BiDi, which Firefox speaks itself
//! (`--remote-debugging-port`): no geckodriver, nothing downloaded.
//!
//! Each run gets a fresh profile with a `user.js` that keeps Firefox from calling home, so the
//! only connections it opens are the ones a page asks for. The per-host limit
//! (`network.http.max-persistent-connections-per-server`, 6) is left at its default: that is
//! what the lab measures.
//!
//! The self-signed certificate is trusted with the session capability `acceptInsecureCerts`
//! rather than a certificate override in the profile: it lasts exactly one BiDi session, writes
//! nothing to the profile, and needs no NSS tooling. (It accepts any certificate for that
//! session, not only sselab's: fine for a throwaway profile that only visits the lab.)
//!
//! BiDi gives each response's protocol (`network.responseStarted`) but no connection id, so
//! the connections a tab used come from the server: the clock page's `connected` event
//! carries the server's own connection id.

use std::ffi::OsStr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::bidi::{self, Bidi, remote_value_to_json};
use super::http3::{FIREFOX_QUIC_OFF, QuicOrigin};
use super::process::BrowserProcess;
use super::{ResponseSeen, find_executable};

/// Executables tried in order when `SSELAB_FIREFOX` is not set.
const FIREFOX_NAMES: [&str; 2] = ["firefox-esr", "firefox"];

/// What Firefox prints on stderr once BiDi listens (then the address).
const BIDI_BANNER: &str = "WebDriver BiDi listening on ";

/// The profile's preferences: no calls home, no speculative connections (they would show up in
/// the connection counts), and the per-host limit left alone. HTTP/3's come after them
/// ([`super::http3`]).
const USER_JS: &str = r#"// Written by sselab for one headless run; the profile is deleted afterwards.
// Telemetry: no pings.
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("toolkit.telemetry.archive.enabled", false);
user_pref("toolkit.telemetry.server", "");
// Data reporting: no health report or usage upload.
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
// Updates: no checks, no downloads.
user_pref("app.update.auto", false);
user_pref("app.update.checkInstallTime", false);
user_pref("app.update.disabledForTesting", true);
// Captive portal and connectivity detection: no probes to detectportal.firefox.com.
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
// Remote settings (and the Nimbus experiments fed by it): no sync.
user_pref("services.settings.server", "data:,#remote-settings-disabled");
user_pref("messaging-system.rsexperimentloader.enabled", false);
// Normandy / Shield studies: none.
user_pref("app.normandy.enabled", false);
user_pref("app.normandy.api_url", "");
user_pref("app.shield.optoutstudies.enabled", false);
// Safe Browsing: no list downloads, no lookups.
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.provider.mozilla.updateURL", "");
// Network prefetch, DNS prefetch, predictor and speculative connections: only what a page asks.
user_pref("network.prefetch-next", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.predictor.enabled", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("browser.urlbar.speculativeConnect.enabled", false);
// Default-browser check: never asked.
user_pref("browser.shell.checkDefaultBrowser", false);
// First-run and what's-new pages: none.
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("startup.homepage_welcome_url", "");
user_pref("startup.homepage_welcome_url.additional", "");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.firstRunURL", "");
user_pref("browser.startup.page", 0);
// New-tab page: blank, no sponsored or remote content.
user_pref("browser.newtabpage.enabled", false);
// JSON viewer off: a JSON response is a plain page a script can run in, as in Chromium.
user_pref("devtools.jsonview.enabled", false);
// Add-ons: no update checks or recommendations.
user_pref("extensions.update.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.systemAddon.update.enabled", false);
"#;

/// Find Firefox, or say exactly how to get it.
pub fn find_firefox() -> anyhow::Result<PathBuf> {
    find_executable(
        "SSELAB_FIREFOX",
        &FIREFOX_NAMES,
        "install Debian's package (`apt-get install -y firefox-esr`, which scripts/test.sh does)",
    )
}

/// One headless Firefox with a fresh profile and one BiDi session, killed on drop; or a handle
/// to one of its user contexts ([`Firefox::context`]).
pub struct Firefox {
    bidi: Bidi,
    /// The user context this handle's tabs open in; `None`: the default one.
    user_context: Option<String>,
    /// The process, on the handle that launched it.
    process: Option<BrowserProcess>,
}

/// One top-level browsing context (a tab).
#[derive(Clone)]
pub struct FirefoxTab {
    bidi: Bidi,
    context: String,
}

impl Firefox {
    /// Start Firefox; with `accept_insecure_certs` this session trusts any certificate. HTTP/3
    /// is off, or on for the one origin `quic` names.
    pub async fn launch(
        accept_insecure_certs: bool,
        quic: Option<&QuicOrigin>,
    ) -> anyhow::Result<Self> {
        let executable = find_firefox()?;
        let profile = tempfile::tempdir().context("creating a Firefox profile directory")?;
        let prefs = profile.path().join("user.js");
        let http3 = quic.map_or(FIREFOX_QUIC_OFF.to_string(), QuicOrigin::firefox_prefs);
        std::fs::write(&prefs, format!("{USER_JS}{http3}"))
            .with_context(|| format!("writing {}", prefs.display()))?;
        let args = [
            "--headless".as_ref(),
            "--no-remote".as_ref(),
            "--profile".as_ref(),
            profile.path().as_os_str(),
            "--remote-debugging-port".as_ref(),
            "0".as_ref(),
        ]
        .map(OsStr::to_os_string);
        let env = [("MOZ_CRASHREPORTER_DISABLE", "1")];
        let (mut process, address) =
            BrowserProcess::start(&executable, args, &env, profile, BIDI_BANNER).await?;
        let (bidi, reader) = bidi::connect(&format!("{address}/session")).await?;
        process.keep(reader);
        let capabilities = json!({"alwaysMatch": {"acceptInsecureCerts": accept_insecure_certs}});
        bidi.command("session.new", json!({ "capabilities": capabilities }))
            .await?;
        bidi.command(
            "session.subscribe",
            json!({"events": ["network.responseStarted"]}),
        )
        .await?;
        Ok(Self {
            bidi,
            user_context: None,
            process: Some(process),
        })
    }

    /// A fresh user context (`browser.createUserContext`: its own cookies, cache and
    /// connections), as a handle whose tabs open there; closing it closes only the context.
    pub async fn context(&self) -> anyhow::Result<Self> {
        let created = self
            .bidi
            .command("browser.createUserContext", json!({}))
            .await?;
        let user_context = created["userContext"]
            .as_str()
            .context("browser.createUserContext gave no userContext")?;
        Ok(Self {
            bidi: self.bidi.clone(),
            user_context: Some(user_context.to_string()),
            process: None,
        })
    }

    /// A new blank tab.
    pub async fn new_tab(&self) -> anyhow::Result<FirefoxTab> {
        let mut params = json!({"type": "tab"});
        if let Some(user_context) = &self.user_context {
            params["userContext"] = user_context.as_str().into();
        }
        let created = self.bidi.command("browsingContext.create", params).await?;
        let context = created["context"]
            .as_str()
            .context("browsingContext.create gave no context")?
            .to_string();
        Ok(FirefoxTab {
            bidi: self.bidi.clone(),
            context,
        })
    }

    /// Close this handle's user context with its tabs, and, on the handle that launched the
    /// browser, end the session and the browser, waiting for the process.
    pub async fn close(mut self) {
        if let Some(user_context) = self.user_context.take() {
            let params = json!({"userContext": user_context});
            let _ = self.bidi.command("browser.removeUserContext", params).await;
        }
        if let Some(process) = self.process.take() {
            let closing = self.bidi.command("browser.close", json!({}));
            process.close(closing).await;
        }
    }
}

impl Drop for Firefox {
    /// A context handle dropped unclosed (a test that failed) takes its tabs with it; the
    /// browser itself goes with its `BrowserProcess`.
    fn drop(&mut self) {
        if let Some(user_context) = self.user_context.take() {
            let params = json!({"userContext": user_context});
            self.bidi
                .command_and_forget("browser.removeUserContext", params);
        }
    }
}

impl FirefoxTab {
    /// Navigate; `wait` is BiDi's readiness: `none` returns at once, `complete` after `load`.
    pub async fn navigate(&self, url: &str, wait: &str) -> anyhow::Result<()> {
        let params = json!({"context": self.context, "url": url, "wait": wait});
        self.bidi
            .command("browsingContext.navigate", params)
            .await
            .with_context(|| format!("navigating to {url}"))?;
        Ok(())
    }

    /// Evaluate `expression` (awaiting a promise) and give its value as JSON.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let params = json!({
            "expression": expression,
            "target": {"context": self.context},
            "awaitPromise": true,
            "resultOwnership": "none",
        });
        let answer = self.bidi.command("script.evaluate", params).await?;
        if answer["type"] == "exception" {
            bail!(
                "the page threw: {}",
                answer["exceptionDetails"]["text"].as_str().unwrap_or("?")
            );
        }
        Ok(remote_value_to_json(&answer["result"]))
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        self.bidi
            .command("browsingContext.close", json!({"context": self.context}))
            .await?;
        Ok(())
    }

    /// Bring this tab to the front (the others become hidden).
    pub async fn activate(&self) -> anyhow::Result<()> {
        self.bidi
            .command("browsingContext.activate", json!({"context": self.context}))
            .await?;
        Ok(())
    }

    /// A PNG of the whole document, base64 (as BiDi sends it).
    pub async fn screenshot(&self) -> anyhow::Result<String> {
        let params = json!({"context": self.context, "origin": "document"});
        let shot = self
            .bidi
            .command("browsingContext.captureScreenshot", params)
            .await?;
        shot["data"]
            .as_str()
            .map(str::to_string)
            .context("a screenshot without data")
    }

    /// Every response whose headers this tab received from now on (BiDi has no connection id).
    pub fn responses(&self) -> tokio::sync::mpsc::UnboundedReceiver<ResponseSeen> {
        let mut events = self.bidi.events();
        let context = self.context.clone();
        let (found, responses) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                };
                let params = &event["params"];
                if event["method"] != "network.responseStarted" || params["context"] != context {
                    continue;
                }
                let response = &params["response"];
                let seen = ResponseSeen {
                    url: response["url"].as_str().unwrap_or_default().to_string(),
                    protocol: response["protocol"].as_str().map(str::to_string),
                    connection: None,
                };
                if found.send(seen).is_err() {
                    break;
                }
            }
        });
        responses
    }
}
