//! One stream, N topics, in real browsers: a page following ten feeds over plain HTTP/1.1,
//! through /lab's remedies. With an EventSource per feed, six feeds are live and four wait for
//! one of the six connections per host; with one `SharedEventSource` of
//! `/sse/topics?topic=…`, all ten are live on one connection and the server holds one stream.
//!
//! Chromium and Firefox run it on the /lab page of `remedies::*::the_lab_measures_each_remedy`
//! (a browser launch is most of its cost); WebKit as `feeds::webkit::…`. Run under the shared
//! lock, as every browser test here:
//! `flock /tmp/sselab-browser.lock cargo test --test browser -- the_lab_measures feeds::`.

use serde_json::Value;
use sselab::browser::{Engine, Tab, eval};

use crate::util::browser::launch;
use crate::util::lab::{SUMMARY, start_remedy};
use crate::util::{TestServer, eventually};

/// The browser's connections per host over HTTP/1.1, in every engine here (Chromium's
/// `kMaxSocketsPerGroup`, Firefox's `network.http.max-persistent-connections-per-server`,
/// WebKit's the same six).
const PER_HOST: u64 = 6;

const FEEDS: u64 = 10;

/// The newest run's summary once `holds` (a JS expression over `s`) is true of it.
async fn settled(lab: &Tab, holds: &str) -> Value {
    crate::util::browser::until(lab, &format!("(s => {holds})({SUMMARY})")).await;
    eval(lab, SUMMARY).await.expect("summary")
}

fn http1_streams(server: &TestServer) -> usize {
    server.state.streams.open_streams().http1
}

/// WebKit's claim, beside its cross-origin reconnect of many topics (one claim, two
/// browsers: the launch is the cost). Chromium and Firefox run the feeds in
/// `remedies::*::the_lab_measures_each_remedy`, on its /lab page.
async fn a_page_with_ten_feeds_over_http1_gets_all_ten_on_one_connection(engine: Engine) {
    let feeds = async {
        // No server timeout: every stream the server holds is one the page asked for.
        let server = TestServer::start(&["--timeout", "0"]).await;
        let browser = launch(engine, &server).await;
        let lab = browser
            .page(&format!("http://localhost:{}/lab", server.http.port()))
            .await
            .expect("/lab");
        ten_feeds_get_all_ten_on_one_connection(engine, &server, &lab).await;
        browser.close().await;
    };
    tokio::join!(
        feeds,
        crate::topics::a_cross_origin_reconnect_with_a_long_last_event_id_resumes_every_topic(
            engine
        ),
    );
}

/// On `lab` (/lab on `server`'s plain listener, no server timeout, no other stream open): ten
/// feeds with an EventSource each, then on one stream of ten topics.
pub(crate) async fn ten_feeds_get_all_ten_on_one_connection(
    engine: Engine,
    server: &TestServer,
    lab: &Tab,
) {
    // An EventSource per feed: six live, each on its own connection, four waiting.
    start_remedy(lab, "http", "feeds", FEEDS as usize).await;
    let each = settled(
        lab,
        &format!(
            "s.live === {PER_HOST} && s.connections === {PER_HOST} && s.serverStreams === {PER_HOST} \
             && s.subscribed === {PER_HOST}"
        ),
    )
    .await;
    eprintln!("{engine:?}: 10 feeds, an EventSource each: {each}");
    assert_eq!(http1_streams(server), PER_HOST as usize, "{each}");

    // One stream of ten topics (starting it closes the EventSources): ten live on one.
    start_remedy(lab, "http", "topics", FEEDS as usize).await;
    let one = settled(
        lab,
        &format!(
            "s.live === {FEEDS} && s.connections === 1 && s.serverStreams === 1 && s.subscribed === {FEEDS}"
        ),
    )
    .await;
    eprintln!("{engine:?}: 10 feeds on one stream of topics: {one}");
    // sselab.js compares the stream's ids (cursors) topic by topic: a later one is newer, an
    // earlier or the same one is not, and the lower of two is the earlier (the worker resumes
    // from it).
    lab.evaluate(
        "window.compared = null; (async () => { const source = window.remedyRuns.at(-1).sources[0]; \
           const first = source.lastEventId; \
           while (source.lastEventId === first) await new Promise((r) => setTimeout(r, 50)); \
           const later = source.lastEventId, ids = SharedEventSource.ids; \
           window.compared = [ids.isNewer(later, first), ids.isNewer(first, later), \
             ids.isNewer(first, first), ids.lower(first, later) === first, \
             ids.lower(later, first) === first, ids.isNewer('8', '7'), ids.lower('8', '7')]; })(); true",
    )
    .await
    .expect("start the comparisons");
    crate::util::browser::until(lab, "window.compared").await;
    let compared: Value = eval(lab, "window.compared").await.expect("the comparisons");
    assert_eq!(
        compared,
        serde_json::json!([true, false, false, true, true, true, "7"]),
        "{engine:?}"
    );
    eventually("the EventSources' streams end", || {
        http1_streams(server) == 1
    })
    .await;
    assert_eq!(each["waiting"], FEEDS - PER_HOST, "{each}");
    assert_eq!(
        each["every"], PER_HOST,
        "no event lost or misrouted: {each}"
    );
    assert_eq!(each["publishErrors"], 0, "{each}");
    assert_eq!(one["streams"], 1, "{one}");
    assert_eq!(one["waiting"], 0, "{one}");
    assert_eq!(one["every"], FEEDS, "no event lost or misrouted: {one}");
    assert_eq!(one["share"], "none", "sselab.js, no fallback: {one}");
    assert_eq!(one["publishErrors"], 0, "{one}");
}

crate::in_every_engine!(@engine webkit, Webkit; a_page_with_ten_feeds_over_http1_gets_all_ten_on_one_connection);
