//! WebKitGTK's MiniBrowser, driven over W3C WebDriver classic by Debian's `WebKitWebDriver`
//! (package `webkit2gtk-driver`): no Safari, nothing downloaded. WebKitGTK's network code is
//! libsoup's, not Safari's (CFNetwork): what the lab measures here is WebKitGTK's behaviour.
//!
//! MiniBrowser has no headless switch, so each browser gets a private X server (`Xvfb
//! -displayfd`), and every session of it shares that display. WebKitWebDriver serves one
//! session at a time, so a [`Webkit::context`] is a second driver with a session of its own:
//! its own MiniBrowser, network process and connection pool. Each driver runs in a process
//! group of its own (`setsid`) under the supervisor of `browser::process`, so killing it takes
//! its MiniBrowser along; nothing outlives sselab.
//!
//! Classic WebDriver has no network events: [`WebkitTab::responses`] gives nothing, and the
//! protocol and connection of each stream come from the server (the clock page's `connected`
//! event). The page-load strategy is `none`, so no command waits for a page: a tab whose page
//! is queued behind a full connection answers scripts at once from its old document (measured:
//! 10-150 ms a read beside six open streams and four queued pages). A script that returns a
//! promise is left running in the page and its result polled, so a long `fetch()` in one tab
//! holds up no command on another. This libsoup links no QUIC library: no HTTP/3.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::http3::QuicOrigin;
use super::process::{BrowserProcess, START_PATIENCE};
use super::webdriver::{self, COMMAND_PATIENCE, Session};
use super::{ResponseSeen, executable_from_env, find_executable};

/// How to get the driver, the browser and the display.
const INSTALL: &str = "install Debian's packages (`apt-get install -y webkit2gtk-driver xvfb`, \
    which scripts/test.sh does)";

/// Where the WebKitGTK 4.1 package keeps MiniBrowser, under a library folder (Debian's is
/// multiarch: `/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser`).
const MINIBROWSER: &str = "webkit2gtk-4.1/MiniBrowser";

/// The longest a page may take to load (WebDriver's default is 300 s).
const PAGE_LOAD: Duration = Duration::from_secs(30);

/// The longest a script may run, and a promise it returns take to settle.
const SCRIPT: Duration = Duration::from_secs(120);

/// How often a promise left in a page, or a loading page, is asked again.
const POLL: Duration = Duration::from_millis(25);

/// The script every evaluation runs (WebDriver's `execute/sync` body): the expression with
/// script semantics (its completion value); a promise is kept in the page under a key, to be
/// asked for by [`PENDING`], rather than awaited while the session's one command slot waits.
const EVALUATE: &str = "const value = (0, eval)(arguments[0]);
if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
  const slots = window.__sselabPending || (window.__sselabPending = {});
  const key = String(Date.now()) + '-' + String(Math.random()).slice(2);
  slots[key] = null;
  value.then((v) => { slots[key] = { value: v === undefined ? null : v }; },
             (e) => { slots[key] = { error: String(e) }; });
  return { __sselabPending: key };
}
return value === undefined ? null : value;";

/// Whether the promise kept under `arguments[0]` has settled: `null` not yet, `{value}` or
/// `{error}` (and forgotten), `{gone: true}` when the document it ran in was left.
const PENDING: &str = "const slots = window.__sselabPending;
if (!slots || !(arguments[0] in slots)) return { gone: true };
const settled = slots[arguments[0]];
if (settled !== null) delete slots[arguments[0]];
return settled;";

/// Why WebKit has no HTTP/3 here (measured: `ldd` on libsoup, libwebkit2gtk and
/// WebKitNetworkProcess finds no ngtcp2, nghttp3, quiche or msquic; only nghttp2).
pub const NO_HTTP3: &str =
    "WebKitGTK's libsoup links no QUIC library (it speaks HTTP/1.1 and HTTP/2 only)";

/// Find WebKitWebDriver, or say how to get it.
pub fn find_driver() -> anyhow::Result<PathBuf> {
    find_executable("SSELAB_WEBKIT_DRIVER", &["WebKitWebDriver"], INSTALL)
}

/// Find Xvfb, or say how to get it.
pub fn find_xvfb() -> anyhow::Result<PathBuf> {
    find_executable("SSELAB_XVFB", &["Xvfb"], INSTALL)
}

/// Find MiniBrowser: `SSELAB_MINIBROWSER`, else under each library folder (this machine's
/// multiarch folder first), or say how to get it.
pub fn find_minibrowser() -> anyhow::Result<PathBuf> {
    if let Some(path) = executable_from_env("SSELAB_MINIBROWSER")? {
        return Ok(path);
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.to_string_lossy().ends_with("-linux-gnu"))
                .collect()
        })
        .unwrap_or_default();
    // This machine's architecture first (`x86_64-linux-gnu` on x86_64).
    folders.sort_by_key(|path| {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        !name.is_some_and(|n| n.starts_with(std::env::consts::ARCH))
    });
    folders.extend(["/usr/lib", "/usr/lib64", "/usr/libexec"].map(PathBuf::from));
    let candidates: Vec<PathBuf> = folders.iter().map(|f| f.join(MINIBROWSER)).collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "MiniBrowser not found (tried {candidates:?}): {INSTALL} or set SSELAB_MINIBROWSER"
            )
        })
}

/// The private X server every session of one browser draws on.
struct Display {
    /// `:N`, as `DISPLAY` names it.
    name: String,
    driver: PathBuf,
    minibrowser: PathBuf,
    accept_insecure_certs: bool,
    /// Killed when the last session of the browser goes.
    _process: BrowserProcess,
}

/// One WebDriver session (its own driver, MiniBrowser and connection pool) on the browser's
/// display, ended on close and killed on drop.
pub struct Webkit {
    session: Session,
    display: Arc<Display>,
    driver: Option<BrowserProcess>,
}

/// One tab: a window of the session.
#[derive(Clone)]
pub struct WebkitTab {
    session: Session,
    handle: String,
}

impl Webkit {
    /// Start a display and a first session; with `accept_insecure_certs` every session trusts
    /// any certificate (without it a self-signed page silently stays `about:blank`). `quic`
    /// must be `None`: WebKitGTK's libsoup has no HTTP/3.
    pub async fn launch(
        accept_insecure_certs: bool,
        quic: Option<&QuicOrigin>,
    ) -> anyhow::Result<Self> {
        if let Some(origin) = quic {
            bail!(
                "WebKit cannot reach {}:{} over HTTP/3: {NO_HTTP3}",
                origin.host,
                origin.port
            );
        }
        let driver = find_driver()?;
        let minibrowser = find_minibrowser()?;
        let xvfb = find_xvfb()?;
        let profile = tempfile::tempdir().context("creating a directory for Xvfb")?;
        let args = [
            "-displayfd",
            "2",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "1280x1024x24",
        ];
        let number = |line: &str| {
            let line = line.trim();
            (!line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())).then(|| line.into())
        };
        let (process, number) = BrowserProcess::start_until(
            &xvfb,
            args,
            &[],
            profile,
            "its display number",
            Some(&number),
        )
        .await?;
        let display = Arc::new(Display {
            name: format!(":{number}"),
            driver,
            minibrowser,
            accept_insecure_certs,
            _process: process,
        });
        Self::session(display).await
    }

    /// A fresh session of this browser: a driver and MiniBrowser of its own (its own cookies,
    /// cache and connections) on the same display; closing it closes only it.
    pub async fn context(&self) -> anyhow::Result<Self> {
        Self::session(self.display.clone()).await
    }

    async fn session(display: Arc<Display>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let profile = tempfile::tempdir().context("creating a WebKit profile directory")?;
        // MiniBrowser's data, cache and settings inside the profile, deleted with it.
        let home = |sub: &str| profile.path().join(sub).display().to_string();
        let (data, cache, config) = (home("data"), home("cache"), home("config"));
        let env = [
            ("DISPLAY", display.name.as_str()),
            ("GDK_BACKEND", "x11"),
            ("XDG_DATA_HOME", data.as_str()),
            ("XDG_CACHE_HOME", cache.as_str()),
            ("XDG_CONFIG_HOME", config.as_str()),
        ];
        // setsid: the driver leads a process group, so the supervisor's kill takes the
        // MiniBrowser it starts along (which outlives a killed driver otherwise: measured).
        let args = [
            display.driver.display().to_string(),
            format!("--port={port}"),
            "--host=127.0.0.1".into(),
        ];
        let (mut driver, _) =
            BrowserProcess::start_until(Path::new("setsid"), args, &env, profile, "", None).await?;
        wait_until_ready(addr, &mut driver, &display.driver).await?;
        let capabilities = json!({"alwaysMatch": {
            "webkitgtk:browserOptions": {
                "binary": display.minibrowser,
                "args": ["--automation"],
            },
            "acceptInsecureCerts": display.accept_insecure_certs,
            "pageLoadStrategy": "none",
            "timeouts": {
                "pageLoad": PAGE_LOAD.as_millis() as u64,
                "script": SCRIPT.as_millis() as u64,
            },
        }});
        let session = Session::new(addr, capabilities)
            .await
            .with_context(|| format!("starting {}", display.minibrowser.display()))?;
        Ok(Self {
            session,
            display,
            driver: Some(driver),
        })
    }

    /// A new blank tab (in the background: MiniBrowser never paints it).
    pub async fn new_tab(&self) -> anyhow::Result<WebkitTab> {
        self.open_window("tab").await
    }

    /// A new blank window, shown (a screenshot of a background tab never comes: measured).
    pub async fn new_window(&self) -> anyhow::Result<WebkitTab> {
        self.open_window("window").await
    }

    async fn open_window(&self, kind: &str) -> anyhow::Result<WebkitTab> {
        let created = self
            .session
            .command("POST", "/window/new", Some(&json!({ "type": kind })))
            .await?;
        let handle = created["handle"]
            .as_str()
            .context("POST /window/new gave no handle")?
            .to_string();
        Ok(WebkitTab {
            session: self.session.clone(),
            handle,
        })
    }

    /// End the session (MiniBrowser closes) and stop its driver.
    pub async fn close(mut self) {
        let _ = self.session.delete().await;
        if let Some(driver) = self.driver.take() {
            driver.kill().await;
        }
    }
}

/// A port free on loopback now, for a driver that must be told its port.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("finding a free port for WebKitWebDriver")?;
    Ok(listener.local_addr()?.port())
}

/// Ask the driver for `/status` until it answers ready (it prints nothing once it listens).
async fn wait_until_ready(
    addr: SocketAddr,
    driver: &mut BrowserProcess,
    program: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_PATIENCE;
    loop {
        let status = webdriver::request(addr, "GET", "/status", None, COMMAND_PATIENCE).await;
        if status.is_ok_and(|s| s["ready"] == true) {
            return Ok(());
        }
        if driver.exited() {
            bail!(
                "{} exited at start (port {} taken?)",
                program.display(),
                addr.port()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not answer on {addr} within {START_PATIENCE:?}",
                program.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

impl WebkitTab {
    /// Evaluate `expression` (awaiting a promise, without holding the session) and give its
    /// value as JSON.
    pub async fn evaluate(&self, expression: &str) -> anyhow::Result<Value> {
        let value = self.execute(EVALUATE, expression).await?;
        let Some(key) = value.get("__sselabPending").and_then(Value::as_str) else {
            return Ok(value);
        };
        let deadline = Instant::now() + SCRIPT;
        loop {
            let settled = self.execute(PENDING, key).await?;
            if settled.get("gone").is_some() {
                bail!("the page was left before the promise settled");
            }
            if let Some(error) = settled.get("error") {
                bail!("the page threw: {}", error.as_str().unwrap_or("?"));
            }
            if let Some(value) = settled.get("value") {
                return Ok(value.clone());
            }
            if Instant::now() >= deadline {
                bail!("the promise did not settle within {SCRIPT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `execute/sync` of `script` with one argument, on this tab.
    async fn execute(&self, script: &str, argument: &str) -> anyhow::Result<Value> {
        let body = json!({"script": script, "args": [argument]});
        self.session
            .on_window(&self.handle, "POST", "/execute/sync", Some(&body))
            .await
    }

    /// Send the tab to `navigation` (a script that navigates) and wait for the new document's
    /// load event: the old document is marked first, so its own `complete` does not count.
    pub async fn load(&self, navigation: &str) -> anyhow::Result<()> {
        self.evaluate(&format!("window.__sselabLeft = true; {navigation}"))
            .await?;
        let deadline = Instant::now() + PAGE_LOAD;
        loop {
            // A script can fail while the document it ran in is being replaced (a probe's
            // load failed so once in about fifteen): asked again, the new document answers.
            let loaded = self
                .evaluate("!window.__sselabLeft && document.readyState === 'complete'")
                .await;
            match loaded {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("the page did not load within {PAGE_LOAD:?}")));
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                bail!("the page did not load within {PAGE_LOAD:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        self.session.close_window(&self.handle).await
    }

    /// A PNG of the viewport, base64 (as WebDriver sends it): of a shown window only
    /// ([`Webkit::new_window`]); a background tab's never comes.
    pub async fn screenshot(&self) -> anyhow::Result<String> {
        let shot = self
            .session
            .on_window(&self.handle, "GET", "/screenshot", None)
            .await?;
        shot.as_str()
            .map(str::to_string)
            .context("a screenshot that is not base64 text")
    }

    /// Nothing: classic WebDriver has no network events (the protocol and connection of a
    /// stream come from the server instead).
    pub fn responses(&self) -> tokio::sync::mpsc::UnboundedReceiver<ResponseSeen> {
        tokio::sync::mpsc::unbounded_channel().1
    }
}
