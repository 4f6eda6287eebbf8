//! Issue 23 in real browsers: a refusal a later try can pass never leaves a tab dead. At a
//! full cap the refused page keeps retrying and ticks once a place frees, without a reload;
//! answered the old way (`--refusals status`, a 503) the same page is closed for good; a page
//! subscribing while Redis is down comes back when Redis does, with no gap; and the lab's
//! "Refused" scenario shows both answers side by side. The four run at once, each on its own
//! server, so the claim costs the longest of them, not their sum — and beside them the token
//! and connection-cap claims and the reconnect of a stream of many topics
//! ([`no_refusal_or_ending_leaves_a_tab_dead`]).

use std::time::{Duration, Instant};

use crate::util::browser::{launch, until};
use crate::util::lab::{number, until_runs};
use crate::util::redis_server::{RedisServer, node, publish, until_health};
use crate::util::{TestServer, Via};
use serde_json::Value;
use sselab::browser::{Engine, LabBrowser, Tab, eval};

/// The bar: both tabs at the cap tick within this long of the second one opening.
const BOTH_TICK_WITHIN: Duration = Duration::from_secs(18);

/// Poll `expression` in `page` until it is truthy, failing after `within`.
async fn until_within(page: &Tab, expression: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !eval::<bool>(page, &format!("!!({expression})"))
        .await
        .unwrap_or(false)
    {
        let state: Value = eval(page, "window.sselab").await.unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "not within {within:?}: {expression}; the page saw {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn clock_page(browser: &LabBrowser, server: &TestServer) -> Tab {
    let url = format!("http://127.0.0.1:{}/?timeout=4", server.http.port());
    browser.page(&url).await.expect("a clock page")
}

async fn page_state(page: &Tab) -> Value {
    eval(page, "window.sselab").await.expect("the page's state")
}

/// `--max-streams 1`, two clock pages: the second is refused and ticks once the first's
/// stream ends (4 s), and neither is ever closed.
async fn at_the_cap_both_pages_tick(browser: &LabBrowser) {
    let server = TestServer::start(&["--max-streams", "1"]).await;
    let first = clock_page(browser, &server).await;
    until(&first, "window.sselab.events > 0").await;
    let second = clock_page(browser, &server).await;
    until_within(
        &second,
        "window.sselab.refusals > 0 && window.sselab.events > 0",
        BOTH_TICK_WITHIN,
    )
    .await;
    for page in [&first, &second] {
        let state = page_state(page).await;
        assert_ne!(state["readyState"], 2, "never closed: {state}");
    }
    let state = page_state(&second).await;
    assert_eq!(state["refusal"]["reason"], "max_streams", "{state}");
    // sselab.js fired `open` once per stream that sent `connected`, never for the refusal
    // answers (each of which fired the EventSource's own `open`).
    let streams = state["lastEventIdSent"].as_array().map(Vec::len);
    assert_eq!(
        state["opens"].as_u64(),
        streams.map(|n| n as u64),
        "{state}"
    );
}

/// The same with `--refusals status`: the refused page is closed for good, even after the
/// place freed (the first page's stream ended and it came back).
async fn answered_503_the_refused_page_dies(browser: &LabBrowser) {
    let server = TestServer::start(&["--max-streams", "1", "--refusals", "status"]).await;
    let first = clock_page(browser, &server).await;
    until(&first, "window.sselab.events > 0").await;
    let second = clock_page(browser, &server).await;
    until(&second, "window.sselab.readyState === 2").await;
    until(
        &first,
        "window.sselab.opens >= 2 && window.sselab.events > 5",
    )
    .await;
    let state = page_state(&second).await;
    assert_eq!(state["readyState"], 2, "closed for good: {state}");
    assert_eq!(state["events"], 0, "{state}");
    assert_eq!(
        state["refusals"], 0,
        "a 503 carries no refused event: {state}"
    );
}

/// Redis down while a page subscribes: refused (redis_unavailable), back once Redis is, and
/// every event published after that arrives in order.
async fn a_redis_blip_is_survived(browser: &LabBrowser) {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let server = node(&redis, &[]).await;
    redis.stop().await;
    until_health(&server, "degraded").await;
    let page = browser
        .page(&format!("http://127.0.0.1:{}/proto", server.http.port()))
        .await
        .expect("a page on the node");
    page.evaluate(
        "window.sselab = { refusals: 0, refusal: null, connected: 0, ids: [], readyState: 0 }; \
         const source = new EventSource('/sse/topics/blip'); \
         source.addEventListener('refused', (e) => { \
           sselab.refusals += 1; sselab.refusal = JSON.parse(e.data); }); \
         source.addEventListener('connected', () => { sselab.connected += 1; }); \
         source.onmessage = (e) => sselab.ids.push(Number(e.lastEventId)); \
         source.onerror = () => { sselab.readyState = source.readyState; }; true",
    )
    .await
    .expect("subscribe");
    until(&page, "window.sselab.refusals > 0").await;
    assert_eq!(
        page_state(&page).await["refusal"]["reason"],
        "redis_unavailable"
    );
    redis.start_again().await;
    until_health(&server, "ok").await;
    until(&page, "window.sselab.connected > 0").await;
    let poster = server.client(Via::H2c).await;
    let mut published = Vec::new();
    for n in 1..=5 {
        published.push(publish(&poster, "blip", &format!("after {n}")).await);
    }
    until(&page, "window.sselab.ids.length >= 5").await;
    let state = page_state(&page).await;
    let ids: Vec<u64> = serde_json::from_value(state["ids"].clone()).expect("ids");
    assert_eq!(
        ids, published,
        "every event after Redis returned, in order: {state}"
    );
    assert!(
        published.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap in the ids: {published:?}"
    );
    assert_ne!(state["readyState"], 2, "{state}");
}

/// The lab's "Refused" scenario: four streams on a cap of two, both ways. The 503 run ends
/// with two streams closed for good; the stream run with all four ticking, none closed.
async fn the_lab_shows_both_answers(browser: &LabBrowser, server: &TestServer) {
    let lab = browser
        .page(&format!("http://127.0.0.1:{}/lab", server.http.port()))
        .await
        .expect("the lab");
    lab.evaluate(
        "document.getElementById('target').value = 'http'; \
         document.getElementById('refused-start').click(); true",
    )
    .await
    .expect("start the scenario");
    let label = |run: &Value, answer: &str| run["label"] == format!("refused: {answer}");
    let runs = until_runs(&lab, |runs| {
        let done = |answer: &str, ticked: u64, closed: u64| {
            runs.iter().any(|run| {
                let count = |name: &str| run[name].as_str().and_then(|n| n.parse::<u64>().ok());
                label(run, answer)
                    && count("ticked") == Some(ticked)
                    && count("closed") == Some(closed)
            })
        };
        done("stream", 4, 0) && done("status", 2, 2)
    })
    .await;
    let stream = runs.iter().find(|run| label(run, "stream")).expect("run");
    assert!(number(stream, "refused") >= 2, "{stream}");
    let status = runs.iter().find(|run| label(run, "status")).expect("run");
    assert_eq!(number(status, "refused"), 0, "{status}");
}

async fn refused_pages_come_back_and_503_ones_die(engine: Engine) {
    let server = TestServer::start(&[]).await;
    let browser = launch(engine, &server).await;
    tokio::join!(
        at_the_cap_both_pages_tick(&browser),
        answered_503_the_refused_page_dies(&browser),
        a_redis_blip_is_survived(&browser),
        the_lab_shows_both_answers(&browser, &server),
    );
}

/// The whole contract at once: the refusals here, a stream whose token runs out
/// (token_expiry.rs) and the connection cap (connection_caps.rs) each on servers and contexts of
/// their own, side by side, so the claim costs the longest of them (about 17 s), not their sum
/// (about 38 s in Firefox).
async fn no_refusal_or_ending_leaves_a_tab_dead(engine: Engine) {
    tokio::join!(
        refused_pages_come_back_and_503_ones_die(engine),
        crate::token_expiry::pages_that_renew_their_token_miss_nothing_and_one_that_does_not_stops(
            engine
        ),
        crate::connection_caps::an_event_source_refused_by_the_connection_cap_ticks_once_a_place_frees(
            engine
        ),
        crate::topics::a_cross_origin_reconnect_with_a_long_last_event_id_resumes_every_topic(
            engine
        ),
    );
}

crate::in_every_engine!(no_refusal_or_ending_leaves_a_tab_dead);
