//! Many topics on one stream, in real browsers: a cross-origin EventSource (the page on the
//! plain HTTP/1.1 listener, the stream on the HTTPS one) follows 32 topics, so its
//! `Last-Event-ID` is longer than the 128 bytes past which recent Fetch drafts would have the
//! reconnect preflighted. The stream ends every second (`?timeout=1&retry=200`) while events are
//! published throughout, and after each reconnect every topic continues exactly where it
//! was: no gap, nothing twice. Measured here, no engine preflights an EventSource's reconnect
//! (the server counts none); a cross-origin `fetch` with the same id as a header is
//! preflighted, passes, and gets exactly what was published since that id.
//!
//! For Chromium and Firefox it runs inside `refusals::*::no_refusal_or_ending_leaves_a_tab_dead`
//! beside the other contract claims; for WebKit inside
//! `feeds::webkit::a_page_with_ten_feeds_over_http1_gets_all_ten_on_one_connection`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use sselab::browser::{Engine, eval};
use sselab::pubsub::hub::Hub;

use crate::util::TestServer;
use crate::util::browser::{launch, until};

const TOPICS: usize = 32;
/// Reconnects to see before publishing stops: each one must resume every topic.
const RECONNECTS: u64 = 2;

/// The page: one EventSource on all topics; per topic the sequence numbers it got, and for
/// each `connected` event the Last-Event-ID the server received and the id the page held.
const PAGE: &str = "((url, topics) => {
  const page = window.page = { seen: {}, connects: [], errors: 0, held: null };
  const source = new EventSource(url);
  source.addEventListener('connected', (e) => {
    page.connects.push({ received: JSON.parse(e.data).last_event_id, held: page.held });
    page.held = e.lastEventId;
  });
  for (const topic of topics) {
    page.seen[topic] = [];
    source.addEventListener('topic:' + topic, (e) => {
      page.seen[topic].push(Number(e.data));
      page.held = e.lastEventId;
    });
  }
  source.onerror = () => { page.errors++; };
  return true;
})(STREAM_URL, TOPIC_NAMES)";

/// A fetch with `Last-Event-ID` set to `id`, cross-origin: its `connected` event's JSON.
const FETCH: &str = "((url, id) => {
  window.fetched = null;
  const controller = new AbortController();
  fetch(url, { headers: { 'Last-Event-ID': id }, signal: controller.signal })
    .then(async (response) => {
      const reader = response.body.getReader();
      let text = '';
      while (!text.includes('\\n\\n')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const data = text.split('\\n').find((line) => line.startsWith('data: '));
      window.fetched = { status: response.status, connected: JSON.parse(data.slice(6)) };
      controller.abort();
    })
    .catch((e) => { window.fetched = { error: String(e) }; });
  return true;
})(STREAM_URL, RESUME_ID)";

fn topic_names() -> Vec<String> {
    (0..TOPICS).map(|n| format!("x{n}")).collect()
}

/// Publish to the topics in turn every 30 ms until `stop`, numbering each topic's events
/// from 1; how many each got.
async fn publish_until(hub: Hub, stop: Arc<AtomicBool>) -> BTreeMap<String, u64> {
    let mut sent: BTreeMap<String, u64> = topic_names().into_iter().map(|t| (t, 0)).collect();
    let names = topic_names();
    for turn in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // Every third topic stays quiet: resuming it must give nothing.
        let topic = &names[(turn * 3 + 1) % TOPICS];
        let n = sent.get_mut(topic).expect("a topic");
        *n += 1;
        let data = n.to_string();
        hub.publish_topic(topic, None, &data)
            .await
            .expect("published");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    sent
}

pub(crate) async fn a_cross_origin_reconnect_with_a_long_last_event_id_resumes_every_topic(
    engine: Engine,
) {
    let server = TestServer::start(&[]).await;
    let browser = launch(engine, &server).await;
    let page = browser
        .page(&format!("http://127.0.0.1:{}/proto", server.http.port()))
        .await
        .expect("the page");
    let names = topic_names();
    let query: Vec<String> = names.iter().map(|t| format!("topic={t}")).collect();
    let stream = format!(
        "https://127.0.0.1:{}/sse/topics?{}",
        server.https.port(),
        query.join("&")
    );
    let script = PAGE
        .replace(
            "STREAM_URL",
            &serde_json::to_string(&format!("{stream}&timeout=1&retry=200")).expect("JSON"),
        )
        .replace("TOPIC_NAMES", &serde_json::to_string(&names).expect("JSON"));
    page.evaluate(&script).await.expect("start the page");
    until(&page, "window.page.connects.length >= 1").await;
    let first_cursor: String = eval(&page, "window.page.held").await.expect("an id");

    // Timed work starts here, with the stream open.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(server.state.hub.clone(), stop.clone()));
    until(
        &page,
        &format!("window.page.connects.length > {RECONNECTS}"),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let sent = publisher.await.expect("the publisher");
    let total: u64 = sent.values().sum();
    until(
        &page,
        &format!("Object.values(window.page.seen).reduce((n, s) => n + s.length, 0) >= {total}"),
    )
    .await;
    let state: Value = eval(&page, "window.page").await.expect("the page's state");
    for (topic, count) in &sent {
        let seen: Vec<u64> = serde_json::from_value(state["seen"][topic].clone()).expect("numbers");
        assert_eq!(
            seen,
            (1..=*count).collect::<Vec<_>>(),
            "{engine:?} topic {topic}: no gap, nothing twice"
        );
    }
    // Each reconnect carried the long id the browser held, unchanged.
    let connects = state["connects"].as_array().expect("connects");
    for connect in &connects[1..] {
        let received = connect["received"]
            .as_str()
            .expect("a Last-Event-ID on each reconnect");
        assert_eq!(
            received, connect["held"],
            "{engine:?}: the id held, unchanged"
        );
        assert!(received.len() > 128, "{engine:?}: {} bytes", received.len());
    }
    let preflights_by_event_source = server.state.responses.preflights();
    eprintln!(
        "{engine:?}: {} reconnects, ids of {} bytes, {total} events, preflights {preflights_by_event_source}",
        connects.len() - 1,
        first_cursor.len()
    );
    assert_eq!(
        preflights_by_event_source, 0,
        "{engine:?} preflighted an EventSource reconnect"
    );

    // A fetch with the first id as a header is preflighted, and gets everything since.
    let fetch = FETCH
        .replace("STREAM_URL", &serde_json::to_string(&stream).expect("JSON"))
        .replace(
            "RESUME_ID",
            &serde_json::to_string(&first_cursor).expect("JSON"),
        );
    page.evaluate(&fetch).await.expect("start the fetch");
    until(&page, "window.fetched").await;
    let fetched: Value = eval(&page, "window.fetched").await.expect("the fetch");
    assert_eq!(fetched["status"], 200, "{engine:?}: {fetched}");
    assert_eq!(fetched["connected"]["last_event_id"], first_cursor.as_str());
    assert_eq!(
        fetched["connected"]["replayed"], total,
        "{engine:?}: {fetched}"
    );
    assert!(
        server.state.responses.preflights() >= 1,
        "{engine:?}: the fetch was preflighted"
    );
}
