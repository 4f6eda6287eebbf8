//! Helpers for the real-browser tests: run each claim in every engine, give each a browser
//! trusting the test server's certificate (a fresh context of one shared browser), and wait
//! for a condition in a page.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sselab::browser::{Engine, LabBrowser, Probe, QuicOrigin, Tab, eval};
use tokio::sync::OnceCell;

use super::{PATIENCE, SharedCertificate, TestServer};

/// The longest wait for tabs to settle (`open_tabs` reads them as soon as they have, in a
/// second or two): long enough for every stream that can open to open, on a busy machine.
pub const SETTLE: Duration = Duration::from_secs(10);

/// How long a probe waits before it counts as blocked: a blocked one never answers (the
/// streams never time out in these tests), and one that is not takes milliseconds.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What "takes milliseconds" must stay under on a busy 2-core machine: half the wait that
/// counts as blocked ([`PROBE_TIMEOUT`]). Usually 5–100 ms; a clean CI run, with the it tests
/// and the other engine's browser beside it, once saw a Firefox page load take 1956 ms.
pub const FAST: u64 = 2500;

/// Both of the probe's requests (a `fetch()` from a tab, a new tab's navigation) answered in
/// milliseconds: not blocked behind the open streams.
pub fn assert_probe_fast(probe: &Probe) {
    let fetch = probe
        .fetch
        .millis()
        .unwrap_or_else(|| panic!("fetch: {probe:?}"));
    let nav = probe
        .nav
        .millis()
        .unwrap_or_else(|| panic!("navigation: {probe:?}"));
    assert!(
        fetch < FAST && nav < FAST,
        "fetch {fetch} ms, navigation {nav} ms"
    );
}

/// What the clock page saw of its reconnect (`window.sselab`, after
/// [`sselab::browser::RECONNECTED_AND_TICKING`]): it came after `retry: 1500`, no tick was lost, the first
/// connect sent no Last-Event-ID, the reconnect sent the last id received (about 3 s of 250 ms
/// ticks) and the next tick continued right after it. Gives the delay (ms) and the id sent.
pub fn assert_reconnected_with_last_event_id(lab: &serde_json::Value) -> (f64, u64) {
    let delay = lab["reconnectDelaysMs"][0]
        .as_f64()
        .expect("a reconnect was timed");
    assert!(
        (1200.0..5000.0).contains(&delay),
        "reconnected after {delay} ms, retry was 1500: {lab}"
    );
    assert_eq!(lab["gaps"], 0, "no tick lost: {lab}");
    let ids: Vec<u64> = serde_json::from_value(lab["ids"].clone()).expect("ids");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive ids: {ids:?}"
    );
    assert_eq!(
        lab["lastEventIdSent"][0],
        serde_json::Value::Null,
        "the first connect sends none"
    );
    let sent = lab["lastEventIdSent"][1]
        .as_u64()
        .expect("the reconnect sent Last-Event-ID");
    assert!((8..=16).contains(&sent), "Last-Event-ID {sent}: {lab}");
    let at = ids
        .iter()
        .position(|id| *id == sent)
        .expect("an id the page received");
    assert_eq!(
        ids[at + 1],
        sent + 1,
        "the next tick continues right after it: {ids:?}"
    );
    (delay, sent)
}

/// One browser test at a time in a test process: browsers are heavy on a 2-core machine, and
/// their timings matter. `scripts/test.sh` runs two such processes side by side (Chromium's
/// claims with two Firefox modules, and the other Firefox claims), which is as much as the
/// machine holds; anything more at once, `flock /tmp/sselab-browser.lock cargo test ...` each.
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Headless `engine` trusting `server`'s certificate: a fresh context (its own cookies, cache
/// and connections: tests/browser/contexts.rs proves the six-per-host wall is per context) of
/// the one browser per engine this test binary shares, or, for a server with a certificate of
/// its own, a fresh browser. A missing browser fails with how to get it.
pub async fn launch(engine: Engine, server: &TestServer) -> LabBrowser {
    let browser = if server.spki == SharedCertificate::get().spki {
        shared(engine).await.context().await
    } else {
        LabBrowser::launch(engine, Some(&server.spki)).await
    };
    browser.unwrap_or_else(|e| panic!("{e:#}"))
}

/// The browser of `engine` the whole test binary shares, trusting its one certificate,
/// launched by the first test that asks. It lives on a runtime of its own: each
/// `#[tokio::test]` ends its runtime when it ends, and with it any task it started, and the
/// browser's connection must outlive them all. It is never closed: it dies with the test
/// binary (the supervisor in `browser::process` kills it once the binary is gone).
async fn shared(engine: Engine) -> &'static LabBrowser {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static CHROMIUM: OnceCell<LabBrowser> = OnceCell::const_new();
    static FIREFOX: OnceCell<LabBrowser> = OnceCell::const_new();
    static WEBKIT: OnceCell<LabBrowser> = OnceCell::const_new();
    let cell = match engine {
        Engine::Chromium => &CHROMIUM,
        Engine::Firefox => &FIREFOX,
        Engine::Webkit => &WEBKIT,
    };
    let launching = || async {
        let runtime = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("the browsers' runtime")
        });
        let spki = SharedCertificate::get().spki.as_str();
        runtime
            .spawn(LabBrowser::launch(engine, Some(spki)))
            .await
            .expect("launching did not panic")
            .unwrap_or_else(|e| panic!("{e:#}"))
    };
    cell.get_or_init(launching).await
}

/// Poll `expression` in the page until it is truthy; panics after [`PATIENCE`].
pub async fn until(page: &Tab, expression: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if eval::<bool>(page, &format!("!!({expression})"))
            .await
            .unwrap_or(false)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expression}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each claim (an `async fn claim(engine: Engine)`, one body) as a test per engine,
/// `chromium::claim` and `firefox::claim`, each holding [`ONE_BROWSER`]; an engine that
/// `SSELAB_TEST_SKIP` names is skipped, out loud ([`super::skip`]). WebKit runs the core
/// claims only (the test budget): those listed after `; webkit:` also run as `webkit::claim`,
/// e.g. `in_every_engine!(a, b, c; webkit: a, b)`.
#[macro_export]
macro_rules! in_every_engine {
    ($($claim:ident),+ ; webkit: $($core:ident),+ $(,)?) => {
        $crate::in_every_engine!($($claim),+);
        $crate::in_every_engine!(@engine webkit, Webkit; $($core),+);
    };
    ($($claim:ident),+ $(,)?) => {
        $crate::in_every_engine!(@engine chromium, Chromium; $($claim),+);
        $crate::in_every_engine!(@engine firefox, Firefox; $($claim),+);
    };
    (@engine $module:ident, $engine:ident; $($claim:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $claim() {
                    if $crate::util::skip::skipped(stringify!($module)) {
                        return;
                    }
                    let _one = $crate::util::browser::ONE_BROWSER.lock().await;
                    let started = std::time::Instant::now();
                    super::$claim(sselab::browser::Engine::$engine).await;
                    $crate::util::browser::record_time(module_path!(), stringify!($claim), started);
                }
            )+
        }
    };
}

/// With `SSELAB_CLAIM_TIMES=FILE`, append how long a claim took (lock held, browser launch
/// included) to FILE: `scripts/test.sh` prints the slowest, so a budget overrun shows where.
pub fn record_time(module: &str, claim: &str, started: Instant) {
    let Some(path) = std::env::var_os("SSELAB_CLAIM_TIMES") else {
        return;
    };
    let line = format!(
        "{:7.1} s  {}::{claim}\n",
        started.elapsed().as_secs_f64(),
        module.trim_start_matches("browser::")
    );
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("SSELAB_CLAIM_TIMES={}: {e}", path.to_string_lossy());
    }
}

/// Headless `engine` trusting `server`'s certificate and reaching its HTTP/3 listener over
/// QUIC (everything else stays on TCP).
pub async fn launch_over_http3(engine: Engine, server: &TestServer) -> LabBrowser {
    let origin = QuicOrigin::of_url(&http3_url(server, "")).expect("an https URL");
    LabBrowser::launch_with_quic(engine, Some(&server.spki), Some(&origin))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// `path_and_query` (after the `/`) on `server`'s HTTP/3 listener.
pub fn http3_url(server: &TestServer, path_and_query: &str) -> String {
    format!("https://127.0.0.1:{}/{path_and_query}", server.h3.port())
}
