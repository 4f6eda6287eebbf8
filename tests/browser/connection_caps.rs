//! `--max-connections` in a real browser: an EventSource refused by the connection cap is
//! answered with a refusal stream (`retry:` and `event: refused`), keeps retrying, and ticks
//! once a place frees — without a reload. (A `503` there would be final, and a close without
//! an answer is final in Firefox: README, "What a browser sees when sselab says no".)
//!
//! The page comes from a second, uncapped server, so the capped one sees only the stream's
//! connection; the test holds the one place itself and gives it up when the refusal arrived.
//! It runs in both engines inside `refusals::*::no_refusal_or_ending_leaves_a_tab_dead`.

use crate::util::browser::{launch, until};
use crate::util::{TestServer, eventually};
use serde_json::Value;
use sselab::browser::{Engine, eval};
use sselab::server::ListenerKind;
use sselab::server::refusal::ConnAnswer;

/// Watches one EventSource: every `error` with the readyState after it, the `refused`
/// events, and the ticks.
const WATCH: &str = r#"
window.watched = {states: [], refused: [], ticks: 0};
const source = new EventSource(URL);
source.onerror = () => watched.states.push(source.readyState);
source.onmessage = () => watched.ticks++;
source.addEventListener('refused', (e) => watched.refused.push(
    {data: JSON.parse(e.data), lastEventId: e.lastEventId}));
true
"#;

pub(crate) async fn an_event_source_refused_by_the_connection_cap_ticks_once_a_place_frees(
    engine: Engine,
) {
    let pages = TestServer::start(&[]).await;
    let capped = TestServer::start(&[
        "--max-connections",
        "1",
        // The held place is given up by the test, not cut by the header deadline.
        "--header-read-timeout",
        "60",
        "--tick-ms",
        "200",
    ])
    .await;
    let held = crate::util::plain(capped.http).await;
    eventually("the one place is held", || {
        capped.state.connections.open().iter().sum::<u64>() == 1
    })
    .await;

    let browser = launch(engine, &pages).await;
    let page = browser
        .page(&format!("http://127.0.0.1:{}/healthz", pages.http.port()))
        .await
        .expect("a page");
    let url = format!(
        "http://127.0.0.1:{}/sse/hello?timeout=0",
        capped.http.port()
    );
    page.evaluate(&WATCH.replace("URL", &format!("'{url}'")))
        .await
        .expect("the EventSource starts");
    until(
        &page,
        "watched.refused.length >= 1 && watched.states.length >= 1",
    )
    .await;
    let refused: Value = eval(&page, "watched.refused[0]").await.expect("refused");
    assert_eq!(refused["data"]["reason"], "max_connections", "{refused}");
    assert_eq!(refused["lastEventId"], "", "no id: {refused}");
    let retry = refused["data"]["retry_ms"].as_u64().expect("retry_ms");
    assert!((5000..=6000).contains(&retry), "{refused}");

    // A place frees; the same EventSource, on the same page, comes back after retry: and ticks.
    drop(held);
    until(&page, "watched.ticks >= 2").await;
    let watched: Value = eval(&page, "watched").await.expect("watched");
    eprintln!("{engine}: {watched}");
    let states = watched["states"].as_array().expect("states");
    assert!(
        states.iter().all(|state| state == 0),
        "every error was followed by a reconnect, none CLOSED: {watched}"
    );
    let streamed = capped
        .state
        .connections
        .admission()
        .refused()
        .into_iter()
        .filter(|(listener, _, answer, _)| {
            (*listener, *answer) == (ListenerKind::Http, ConnAnswer::Stream)
        })
        .map(|(.., n)| n)
        .sum::<u64>();
    assert!(
        streamed >= 1 && streamed == watched["refused"].as_array().map_or(0, |r| r.len()) as u64,
        "the server answered each refusal the page saw with a stream: {streamed}, {watched}"
    );
    browser.close().await;
}
