//! The collateral damage of open SSE streams, timed: once N tabs hold their streams, does
//! their origin still answer anything else? Over HTTP/1.1 each stream holds one of the
//! browser's six connections to the host, so with six streams open a `fetch()` and a new
//! tab's page wait in the same queue as the streams that could not open; over HTTP/2 they
//! are more streams on the one connection and take milliseconds.
//!
//! Both probes run at once, each bounded by the timeout: a blocked probe costs the timeout
//! once, not twice. The fetch is timed by the page (`performance.now()`); the navigation
//! from asking for it to the load event (CDP's, or BiDi's `browsingContext.navigate` with
//! `wait: complete`), so it includes a round trip to the browser (a few ms).

use std::fmt;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{LabBrowser, OpenTabs, Tab};

/// How one probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTime {
    /// It completed after this many milliseconds.
    Took(u64),
    /// Nothing came back within the timeout.
    Blocked,
    /// It failed outright (not a wait): the browser's reason.
    Failed(String),
}

impl ProbeTime {
    /// The milliseconds it took, when it completed.
    pub fn millis(&self) -> Option<u64> {
        match self {
            ProbeTime::Took(ms) => Some(*ms),
            _ => None,
        }
    }
}

impl fmt::Display for ProbeTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeTime::Took(ms) => write!(f, "{ms}ms"),
            ProbeTime::Blocked => f.write_str("blocked"),
            ProbeTime::Failed(_) => f.write_str("failed"),
        }
    }
}

/// A `fetch()` from one of the tabs and a new tab's navigation, both to the tabs' origin.
#[derive(Debug, Clone)]
pub struct Probe {
    pub fetch: ProbeTime,
    pub nav: ProbeTime,
}

impl Probe {
    /// The fields `sselab tabs --probe` adds to its last line.
    pub fn fields(&self) -> String {
        format!("probe_fetch={} probe_nav={}", self.fetch, self.nav)
    }
}

/// What the fetch probe's script resolves to: `ms`, or `error` (`aborted` at the timeout).
#[derive(Debug, Deserialize)]
struct FetchOutcome {
    ms: Option<f64>,
    #[serde(default)]
    aborted: bool,
    error: Option<String>,
}

impl LabBrowser {
    /// Time a `fetch()` of `/proto` from one of `tabs` (an open one when there is one, so
    /// it is same-origin) and one more tab's navigation to their page, each within `timeout`.
    pub async fn probe(&self, tabs: &OpenTabs, timeout: Duration) -> anyhow::Result<Probe> {
        let opened = tabs.report.tabs.iter().position(|t| t.open).unwrap_or(0);
        let page = tabs
            .pages
            .get(opened)
            .ok_or_else(|| anyhow::anyhow!("no tab to probe from"))?;
        let (fetch, nav) = tokio::join!(
            time_fetch(page, timeout),
            self.time_navigation(&tabs.url, timeout)
        );
        Ok(Probe { fetch, nav: nav? })
    }

    /// Open a new tab, send it to `url` and wait for its load event.
    async fn time_navigation(&self, url: &str, timeout: Duration) -> anyhow::Result<ProbeTime> {
        let page = self.page("about:blank").await?;
        let started = Instant::now();
        Ok(match tokio::time::timeout(timeout, page.load(url)).await {
            Ok(Ok(())) => ProbeTime::Took(started.elapsed().as_millis() as u64),
            Ok(Err(e)) => ProbeTime::Failed(format!("{e:#}")),
            Err(_) => ProbeTime::Blocked,
        })
    }
}

/// `fetch('/proto')` in `page`, aborted after `timeout`.
async fn time_fetch(page: &Tab, timeout: Duration) -> ProbeTime {
    let script = format!(
        "(async () => {{
           const abort = new AbortController();
           const timer = setTimeout(() => abort.abort(), {timeout_ms});
           const started = performance.now();
           try {{
             const response = await fetch('/proto?probe=' + Date.now(),
                                          {{ cache: 'no-store', signal: abort.signal }});
             await response.text();
             return {{ ms: performance.now() - started }};
           }} catch (e) {{
             return {{ aborted: e.name === 'AbortError', error: String(e) }};
           }} finally {{
             clearTimeout(timer);
           }}
         }})()",
        timeout_ms = timeout.as_millis()
    );
    // The page aborts at the timeout; this bound is for a page that never answers at all.
    let answer = tokio::time::timeout(timeout + Duration::from_secs(10), page.evaluate(&script));
    let outcome = match answer.await {
        Err(_) => return ProbeTime::Blocked,
        Ok(Err(e)) => return ProbeTime::Failed(e.to_string()),
        Ok(Ok(result)) => serde_json::from_value::<FetchOutcome>(result),
    };
    match outcome {
        Ok(FetchOutcome { ms: Some(ms), .. }) => within(ms, timeout),
        Ok(FetchOutcome { aborted: true, .. }) => ProbeTime::Blocked,
        Ok(FetchOutcome { error, .. }) => ProbeTime::Failed(error.unwrap_or_default()),
        Err(e) => ProbeTime::Failed(e.to_string()),
    }
}

/// A time the browser measured, as a probe result: later than `timeout` is blocked.
fn within(ms: f64, timeout: Duration) -> ProbeTime {
    if ms > timeout.as_millis() as f64 {
        ProbeTime::Blocked
    } else {
        ProbeTime::Took(ms.round() as u64)
    }
}
