//! Real browsers over HTTP/3 (QUIC) to the `--h3` listener: the README's HTTP/3 column,
//! proved by the browser itself, in Chromium and Firefox ESR (WebKit has no HTTP/3: its claim
//! asserts the refusal). Each browser here starts with
//! QUIC forced on for the listener's origin (`LabBrowser::launch_with_quic`: Chromium's
//! `--origin-to-force-quic-on`, Firefox's `alt-svc-mapping-for-testing`), since neither uses
//! QUIC to a fresh self-signed server by itself; every other browser test runs with QUIC off.
//!
//! The pages are at `https://127.0.0.1:H3PORT/`: the test server's UDP port, which no TCP
//! listener shares, so a tab that fell back to TCP would fail rather than pass on HTTP/2.

use std::time::{Duration, Instant};

use crate::util::browser::{
    PROBE_TIMEOUT, SETTLE, assert_reconnected_with_last_event_id, http3_url, launch_over_http3,
    until,
};
use crate::util::lab::{start_run, until_run};
use crate::util::{PATIENCE, TestServer, Via};
use serde_json::{Value, json};
use sselab::browser::{Engine, LabBrowser, Probe, QuicOrigin, TabsReport, eval};

/// Ten tabs of the clock page over HTTP/3 in `browser`, read after [`SETTLE`]: what they did,
/// and the server's count of HTTP/3 streams on each connection that carries some, most first
/// (read while the tabs were still open); then the probe beside them.
async fn ten_tabs_and_the_probe(
    browser: &LabBrowser,
    server: &TestServer,
) -> (TabsReport, Vec<usize>, Probe) {
    let tabs = browser
        .open_tabs(&http3_url(server, ""), 10, SETTLE)
        .await
        .expect("tabs");
    // Before the probe: its new tab would hold one more stream.
    let streams_per_connection: Vec<usize> = server
        .state
        .streams
        .stats()
        .connections_with_streams
        .iter()
        .filter(|c| c.listener == "h3")
        .map(|c| c.streams)
        .collect();
    let probe = browser.probe(&tabs, PROBE_TIMEOUT).await.expect("probe");
    (tabs.report, streams_per_connection, probe)
}

/// A clock page in `browser` whose stream the server ends after 3 s, once it has reconnected
/// and ticks again: its `window.sselab`.
async fn a_timed_out_page(browser: &LabBrowser, server: &TestServer) -> Value {
    let page = browser
        .page(&http3_url(server, "?timeout=3&retry=1500"))
        .await
        .expect("clock page");
    until(&page, sselab::browser::RECONNECTED_AND_TICKING).await;
    eval(&page, "window.sselab").await.expect("page state")
}

/// Ten tabs on one QUIC connection, all ticking, the server counting ten HTTP/3 streams on
/// it, and the origin free beside them: a fetch from a tab and an 11th tab's page take
/// milliseconds. Beside them, at the same time, a page in a context of its own (so on a QUIC
/// connection of its own) whose stream the server ends after 3 s reconnects over HTTP/3 with
/// `Last-Event-ID`. One browser for all of it: Firefox's QUIC launch costs seconds, and the
/// reconnect's wait overlaps the tabs' settling.
async fn http3_opens_all_ten_on_one_quic_connection_leaves_the_origin_free_and_resumes_a_timed_out_stream(
    engine: Engine,
) {
    let server = TestServer::start(&["--tick-ms", "250", "--timeout", "0"]).await;
    if engine == Engine::Webkit {
        // WebKitGTK's libsoup links no QUIC library: asked for HTTP/3, WebKit says so rather
        // than fall back to TCP.
        let origin = QuicOrigin::of_url(&http3_url(&server, "")).expect("an https URL");
        let refused = LabBrowser::launch_with_quic(engine, Some(&server.spki), Some(&origin)).await;
        let error = format!("{:#}", refused.err().expect("WebKit refuses HTTP/3"));
        assert!(error.contains("links no QUIC library"), "{error}");
        return;
    }
    let browser = launch_over_http3(engine, &server).await;
    let beside = browser.context().await.expect("a second context");
    let ((report, streams_per_connection, probe), lab) = tokio::join!(
        ten_tabs_and_the_probe(&browser, &server),
        a_timed_out_page(&beside, &server)
    );
    beside.close().await;
    browser.close().await;
    eprintln!(
        "{engine} over HTTP/3: {} server_http3={streams_per_connection:?} {}",
        report.line(),
        probe.fields()
    );

    assert_eq!(
        report.line(),
        "open=10 pending=0 protocol=h3 connections=1",
        "{report:#?}"
    );
    assert!(
        report.tabs.iter().all(|t| t.events >= 2),
        "all of them tick: {report:#?}"
    );
    // The tabs' connection, and at most the reconnecting page's one stream on its own.
    assert_eq!(
        streams_per_connection.first(),
        Some(&10),
        "the server counts ten HTTP/3 streams on one connection: {streams_per_connection:?}"
    );
    assert!(
        streams_per_connection[1..].iter().sum::<usize>() <= 1,
        "and nothing else but the other page's stream: {streams_per_connection:?}"
    );
    crate::util::browser::assert_probe_fast(&probe);

    assert_eq!(
        lab["protocol"], "HTTP/3",
        "the reconnect came over HTTP/3: {lab}"
    );
    let (delay, sent) = assert_reconnected_with_last_event_id(&lab);
    eprintln!("{engine}: reconnected over HTTP/3 {delay} ms after the error, Last-Event-ID {sent}");
    let stats = server.state.streams.stats();
    assert!(stats.resumed_with_last_event_id >= 1, "{stats:?}");
}

/// At `--h3-max-streams 5` (the QUIC bidirectional stream limit the server grants) both
/// engines do what they do at HTTP/2's `SETTINGS_MAX_CONCURRENT_STREAMS`: five streams open,
/// the other five tabs wait on the same connection, no second QUIC connection is opened to get
/// more streams, and a waiting tab gets its stream as soon as another tab lets one go.
/// Measured in Chromium 156 and Firefox ESR 153, every run. A waiting tab's page request and
/// its stream queue alike: whether the page came before the streams filled the connection
/// (the EventSource then waits in CONNECTING, no error, no retry) or not depends on timing,
/// and both were seen in both engines. And as over HTTP/2, with the five streams all held,
/// nothing else gets through to the origin either, not even a fetch or a new tab's page; and
/// `/lab`'s h3 run says so: five open, five waiting on one QUIC connection at the stream
/// limit, its probe blocked by it. One browser and one settle for all of it (Firefox's QUIC
/// launch costs seconds), the lab's run beside the probe's wait.
async fn http3_stops_at_the_servers_quic_stream_limit_the_probe_waits_too_and_the_lab_says_so(
    engine: Engine,
) {
    let server = TestServer::start(&[
        "--tick-ms",
        "500",
        "--timeout",
        "0",
        "--h3-max-streams",
        "5",
    ])
    .await;
    let browser = launch_over_http3(engine, &server).await;
    let tabs = browser
        .open_tabs(&http3_url(&server, ""), 10, SETTLE)
        .await
        .expect("tabs");
    let report = &tabs.report;
    assert_eq!(
        report.line(),
        "open=5 pending=5 protocol=h3 connections=1",
        "{report:#?}"
    );
    assert_eq!(
        server.state.streams.open_streams().http3,
        5,
        "the server holds five"
    );
    let (open, waiting): (Vec<usize>, Vec<usize>) = (0..10).partition(|&i| report.tabs[i].open);
    // Two tabs go (the last two open: the probe below asks from the first); two waiting ones
    // take their streams, on the same connection.
    for &i in &open[3..] {
        tabs.tabs()[i].clone().close().await.expect("close a tab");
    }
    let deadline = Instant::now() + PATIENCE;
    let mut now_open = Vec::new();
    while now_open.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now_open.clear();
        for &i in &waiting {
            let script = "window.sselab ? window.sselab.readyState : 0";
            let asking = eval::<u8>(&tabs.tabs()[i], script);
            if let Ok(Ok(1)) = tokio::time::timeout(Duration::from_secs(1), asking).await {
                now_open.push(i);
            }
        }
    }
    let server_http3 = server.state.streams.open_streams().http3;
    // The server's connection ids, from each page's `connected` event.
    let mut connections = Vec::new();
    for &i in now_open.iter().chain(&open[..1]) {
        let id: Option<u64> = eval(&tabs.tabs()[i], "window.sselab.connection")
            .await
            .expect("connection id");
        connections.push(id);
    }
    // The five streams held again: a fetch from the first tab and an 11th tab's page wait.
    // Meanwhile /lab, in a context of its own (a QUIC connection with five streams of its
    // own), runs ten streams against the same origin: its wait overlaps the probe's.
    let beside = browser.context().await.expect("a second context");
    let (probe, lab) = tokio::join!(
        browser.probe(&tabs, PROBE_TIMEOUT),
        the_labs_h3_run_at_the_limit(&beside, &server)
    );
    let probe = probe.expect("probe");
    beside.close().await;
    browser.close().await;
    eprintln!(
        "{engine} at the limit over HTTP/3: {}; /lab: {lab}",
        probe.fields()
    );
    assert_eq!(now_open.len(), 2, "two waiting tabs opened: {now_open:?}");
    assert!(
        connections[0].is_some() && connections.iter().all(|c| *c == connections[0]),
        "on the connection the others use: {connections:?}"
    );
    assert_eq!(server_http3, 5, "still five streams, never more");
    assert_eq!(
        probe.fields(),
        "probe_fetch=blocked probe_nav=blocked",
        "the one connection is full: {probe:?}"
    );
    // /lab says the same of its own run, and why its probe waits.
    assert_eq!(
        (&lab["probeFetch"], &lab["probeImage"]),
        (&Value::from("blocked"), &Value::from("blocked")),
        "{lab}"
    );
    assert_eq!(lab["probeBlockedBy"], "quic-stream-limit", "{lab}");
}

/// `/lab` in `browser` running ten streams against `server`'s h3 listener, once it says five
/// are open and five wait on its one QUIC connection at the stream limit, and its probe (3 s)
/// has answered or given up: the run's data attributes.
async fn the_labs_h3_run_at_the_limit(browser: &LabBrowser, server: &TestServer) -> Value {
    let lab = browser
        .page(&format!("http://127.0.0.1:{}/lab", server.http.port()))
        .await
        .expect("/lab");
    start_run(&lab, "h3", 10, 3).await;
    until_run(&lab, "h3", |d| {
        d["protocol"] == "HTTP/3"
            && (d["open"] == "5" && d["waiting"] == "5" && d["connections"] == "1")
            && d["waitingOn"] == "quic-stream-limit"
    })
    .await;
    until_run(&lab, "h3", |d| d["probeFetch"].is_string()).await
}

async fn a_finished_order_page_stops_reconnecting_over_http3(engine: Engine) {
    let server = TestServer::start(&["--retry", "300"]).await;
    // The browser first: the order's clock must start only when the page can open right after.
    let browser = launch_over_http3(engine, &server).await;
    let api = server.client(Via::H1).await;
    let id = crate::util::create_order(&api, json!({"steps": 2, "interval_ms": 2000})).await;
    let page = browser
        .page(&http3_url(&server, &format!("orders/{id}")))
        .await
        .expect("order page");
    until(&page, "window.orderPage.finished === 'done'").await;
    // The server closed the stream; the browser reconnects after 300 ms, gets 204, and stops.
    until(&page, "window.orderPage.readyState === 2").await;
    // Closed now; it must stay closed: several retry periods for a reopen that must not come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state: Value = eval(&page, "window.orderPage").await.expect("page state");
    let page_protocol: String = eval(
        &page,
        "performance.getEntriesByType('navigation')[0].nextHopProtocol",
    )
    .await
    .expect("the page's protocol");
    browser.close().await;
    assert_eq!(page_protocol, "h3", "the order page came over HTTP/3");
    assert_eq!(state["readyState"], 2, "EventSource CLOSED: {state}");
    assert_eq!(state["opens"], 1, "never opened again: {state}");
    let stats = server.state.streams.stats();
    assert_eq!(stats.opened_total, 1, "the 204 opened no stream: {stats:?}");
}

crate::in_every_engine!(
    http3_opens_all_ten_on_one_quic_connection_leaves_the_origin_free_and_resumes_a_timed_out_stream,
    http3_stops_at_the_servers_quic_stream_limit_the_probe_waits_too_and_the_lab_says_so,
    a_finished_order_page_stops_reconnecting_over_http3;
    webkit: http3_opens_all_ten_on_one_quic_connection_leaves_the_origin_free_and_resumes_a_timed_out_stream,
);
