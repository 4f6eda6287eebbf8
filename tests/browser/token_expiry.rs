//! A stream's token runs out and the page carries on. With `--jwt-leeway 0` sselab ends each
//! stream when its token does (`token-expired`, with the stream's `retry:`); a page that
//! renewed its credentials meanwhile comes back from its Last-Event-ID with no gap — a plain
//! EventSource whose `sselab_auth` cookie the page renews, and sselab.js given `token:` over
//! `?access_token=` — while a page that did nothing gets one 401 and stops. All three at once,
//! with events published throughout, so a gap would show. It runs in both engines inside
//! `refusals::*::no_refusal_or_ending_leaves_a_tab_dead`, beside the other contract claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use sselab::browser::{Engine, Tab, eval};

use crate::util::auth::{secured, token, token_expiring_in};
use crate::util::browser::{launch, until};
use crate::util::tabs::assert_consecutive;
use crate::util::{TestServer, Via};

/// What the pages follow, and what its tokens grant.
const TOPIC: &str = "tok";

/// Seconds from now each page's tokens run out: three expiries 3 s apart (the first token a
/// 5 s one), then one that outlasts the test. Each stream ends in the second after its
/// token's `exp` and is back 300 ms later (`--retry`) with the next token, which has 2.7 s
/// left then: room for a slow reconnect on a busy machine (this runs beside the other
/// contract claims, see refusals.rs).
const EXPIRIES: [i64; 4] = [5, 8, 11, 3600];

/// The renewing page: hands its first token over as the cookie, opens a plain EventSource, and
/// on each `connected` puts the next token in the cookie, so the reconnect after this stream's
/// token expires carries a good one.
const COOKIE_PAGE: &str = "(async (tokens) => {
  const setCookie = (token) => fetch('/api/auth/cookie',
    { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
  const page = window.page = { ids: [], connects: 0, expired: 0, errors: 0, renewed: 0 };
  await setCookie(tokens.shift());
  const source = new EventSource('/sse/topics/TOPIC');
  source.addEventListener('connected', () => {
    page.connects++;
    if (tokens.length) setCookie(tokens.shift()).then((r) => { if (r.ok) page.renewed++; });
  });
  source.addEventListener('token-expired', () => page.expired++);
  source.onmessage = (e) => page.ids.push(Number(e.lastEventId));
  source.onerror = () => { page.errors++; page.readyState = source.readyState; };
  return true;
})(TOKENS)";

/// sselab.js with `token:`: the library asks for each token itself.
const TOKEN_PAGE: &str = "((tokens) => {
  const page = window.page = { ids: [], opens: 0, expired: 0, errors: 0, asked: 0 };
  const token = async () => { page.asked++; return tokens.shift(); };
  const source = new SharedEventSource('/sse/topics/TOPIC', { share: 'leader', token });
  source.addEventListener('token-expired', () => page.expired++);
  source.onopen = () => page.opens++;
  source.onmessage = (e) => page.ids.push(Number(e.lastEventId));
  source.onerror = () => page.errors++;
  return true;
})(TOKENS)";

/// `script` with its tokens and topic filled in.
fn script(script: &str, tokens: &[String]) -> String {
    let tokens = serde_json::to_string(tokens).expect("JSON");
    script.replace("TOKENS", &tokens).replace("TOPIC", TOPIC)
}

async fn start(page: &Tab, script: String) {
    page.evaluate(&script).await.expect("start the page");
}

async fn page_state(page: &Tab) -> Value {
    eval(page, "window.page").await.expect("the page's state")
}

/// Post to the topic every 100 ms until `stop`; the last id published.
async fn publish_until(server: &TestServer, stop: Arc<AtomicBool>) -> u64 {
    let api = server.client(Via::H2c).await;
    let publisher = token(&[&format!("topics/{TOPIC}")], &[], false);
    let path = format!("/api/topics/{TOPIC}/events");
    let mut last = 0;
    while !stop.load(Ordering::SeqCst) {
        let answer = crate::util::auth::post_as(&api, Some(&publisher), &path).await;
        last = crate::util::accepted(answer).await["id"]
            .as_u64()
            .expect("an id");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

pub(crate) async fn pages_that_renew_their_token_miss_nothing_and_one_that_does_not_stops(
    engine: Engine,
) {
    let server = secured(&["--jwt-leeway", "0", "--retry", "300", "--retry-jitter", "0"]).await;
    let browser = launch(engine, &server).await;
    // Another context: a cookie jar of its own.
    let idle_browser = launch(engine, &server).await;
    let port = server.https.port();
    let cookie_page = browser
        .page(&format!("https://localhost:{port}/proto"))
        .await
        .expect("the cookie page");
    // Another host, so no cookie: its ?access_token= is the token read (the cookie would win).
    let token_page = browser
        .page(&format!("https://127.0.0.1:{port}/proto"))
        .await
        .expect("the token page");
    let idle_page = idle_browser
        .page(&format!("https://localhost:{port}/proto"))
        .await
        .expect("the idle page");
    let load = "fetch('/sselab.js').then(r => r.text()).then(code => (0, eval)(code)); true";
    token_page.evaluate(load).await.expect("load sselab.js");
    until(&token_page, "window.SharedEventSource").await;

    // Timed work starts here, with every page ready.
    let subscribe = [format!("topics/{TOPIC}")];
    let subscribe: Vec<&str> = subscribe.iter().map(String::as_str).collect();
    let tokens = || -> Vec<String> {
        EXPIRIES
            .iter()
            .map(|secs| token_expiring_in(*secs, &subscribe))
            .collect()
    };
    let (cookie_tokens, page_tokens) = (tokens(), tokens());
    tokio::join!(
        start(&cookie_page, script(COOKIE_PAGE, &cookie_tokens)),
        start(&token_page, script(TOKEN_PAGE, &page_tokens)),
        // Renews nothing: only its first token.
        start(&idle_page, script(COOKIE_PAGE, &cookie_tokens[..1])),
    );
    until(&cookie_page, "window.page.connects === 1").await;
    until(&token_page, "window.page.opens === 1").await;
    until(&idle_page, "window.page.connects === 1").await;

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = publish_until(&server, Arc::clone(&stop));
    let three_expiries = async {
        until(&cookie_page, "window.page.connects === 4").await;
        until(&token_page, "window.page.opens === 4").await;
        until(&idle_page, "window.page.readyState === 2").await;
        // A few more events on the last streams, then the publisher stops.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
    };
    let (last, ()) = tokio::join!(publishing, three_expiries);
    for page in [&cookie_page, &token_page] {
        until(page, &format!("window.page.ids.at(-1) === {last}")).await;
    }

    let (renewing, library, idle) = (
        page_state(&cookie_page).await,
        page_state(&token_page).await,
        page_state(&idle_page).await,
    );
    let statuses = server.state.responses.snapshot();
    let closed = server.state.streams.stats().close_reasons;
    browser.close().await;
    idle_browser.close().await;
    eprintln!("renewing cookie page: {}", without_ids(&renewing));
    eprintln!("sselab.js with token: {}", without_ids(&library));
    eprintln!("idle page: {idle}");

    // Every event, once, in order, across three planned reconnects each.
    for (name, page) in [("cookie page", &renewing), ("sselab.js", &library)] {
        let ids: Vec<u64> = serde_json::from_value(page["ids"].clone()).expect("ids");
        assert_eq!(ids.first(), Some(&1), "{name}: from the first event");
        assert_eq!(ids.last(), Some(&last), "{name}: to the last");
        assert_consecutive(&ids, name);
        assert_eq!(page["expired"], 3, "{name}: three expiries");
    }
    assert_eq!(renewing["renewed"], 3, "{renewing}");
    // A plain EventSource reports each reconnect as an error; sselab.js reopens by itself.
    assert_eq!(renewing["errors"], 3, "{renewing}");
    assert_eq!(library["errors"], 0, "{library}");
    assert_eq!(library["asked"], 4, "a token per stream: {library}");
    // The page that renewed nothing: its stream ended, its reconnect got the one 401 the
    // server answered, and its EventSource stopped for good.
    assert_eq!(idle["expired"], 1, "{idle}");
    assert_eq!(idle["errors"], 2, "the end, then the 401: {idle}");
    assert_eq!(idle["readyState"], 2, "CLOSED: {idle}");
    assert_eq!(statuses.get(&401), Some(&1), "{statuses:?}");
    assert_eq!(
        closed.get("token-expired"),
        Some(&7),
        "3 + 3 + 1: {closed:?}"
    );
}

fn without_ids(page: &Value) -> Value {
    let mut page = page.clone();
    page["ids"] = page["ids"].as_array().map_or(0, Vec::len).into();
    page
}
