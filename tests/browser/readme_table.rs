//! Real browsers (Debian's Chromium and Firefox ESR, headless, one context per test, so one
//! socket pool; WebKitGTK's MiniBrowser for the table's facts) against real listeners: the
//! README's table, proved by the browser itself. The truth is read from the browser: each
//! page's EventSource events and each response's protocol and connection (CDP
//! Network.responseReceived; in Firefox the server's connection ids; in WebKit, which has no
//! network events, the server's protocol and connection ids).
//!
//! A missing browser fails these tests with a message saying how to install it; it is
//! never a silent skip.

use std::time::Duration;

use crate::util::browser::{
    FAST, PROBE_TIMEOUT, SETTLE, assert_reconnected_with_last_event_id, launch, until,
};
use crate::util::lab::{number, runs, start_run, until_runs};
use crate::util::{TestServer, Via};
use serde_json::{Value, json};
use sselab::browser::{Engine, LabBrowser, Probe, ProbeTime, Tab, TabsReport, eval};

/// `count` tabs of `url`, once they settled; the server holds as many streams as the browser
/// shows open (read while the tabs are still open).
async fn tabs(engine: Engine, server: &TestServer, url: &str, count: usize) -> TabsReport {
    let browser = launch(engine, server).await;
    let report = browser
        .open_tabs(url, count, SETTLE)
        .await
        .expect("tabs")
        .report;
    let held = server.state.streams.open_streams().total();
    browser.close().await;
    eprintln!(
        "{engine} at {url}: {} (settled after {:?} ms)",
        report.line(),
        report.settled_ms
    );
    assert_eq!(
        held, report.open,
        "the server's streams against the browser's: {report:#?}"
    );
    report
}

/// Ten tabs of `url`, then the probe beside them (a fetch from a tab, an 11th tab).
async fn probed_tabs(engine: Engine, server: &TestServer, url: &str) -> (TabsReport, Probe) {
    let browser = launch(engine, server).await;
    let tabs = browser.open_tabs(url, 10, SETTLE).await.expect("tabs");
    let probe = browser.probe(&tabs, PROBE_TIMEOUT).await.expect("probe");
    browser.close().await;
    eprintln!(
        "measured at {url}: {} {}",
        tabs.report.line(),
        probe.fields()
    );
    (tabs.report, probe)
}

/// `/lab` (over plain HTTP/1.1) with a run of 10 streams against each listener, each run
/// probing its origin with `probe_timeout` once its streams settle.
async fn lab_with_runs(browser: &LabBrowser, server: &TestServer, probe_timeout: Duration) -> Tab {
    let lab = browser
        .page(&format!("http://localhost:{}/lab", server.http.port()))
        .await
        .expect("/lab");
    for target in ["http", "https-h1", "https"] {
        start_run(&lab, target, 10, probe_timeout.as_secs()).await;
    }
    lab
}

/// A run at the HTTP/1.1 wall: 6 open (or up to `most`), the rest waiting on the per-host
/// connection limit.
fn at_the_http1_wall(run: &Value, most: u64) -> bool {
    let open = run["open"].as_str().and_then(|n| n.parse::<u64>().ok());
    let waiting = run["waiting"].as_str().and_then(|n| n.parse::<u64>().ok());
    run["protocol"] == "HTTP/1.1"
        && run["waitingOn"] == "http1-connections-per-host"
        && open.is_some_and(|open| (6..=most).contains(&open))
        && open.zip(waiting).is_some_and(|(o, w)| o + w == 10)
}

/// A run of ten on one HTTP/2 connection.
fn ten_on_one_http2_connection(run: &Value) -> bool {
    run["protocol"] == "HTTP/2"
        && run["open"] == "10"
        && run["waiting"] == "0"
        && run["connections"] == "1"
}

async fn plain_http1_opens_six_streams_and_four_tabs_wait(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500"]).await;
    let url = format!("http://127.0.0.1:{}/", server.http.port());
    let report = tabs(engine, &server, &url, 10).await;
    assert_the_http1_wall(engine, &report);
    assert_eq!(report.protocol, "http/1.1");
    if engine != Engine::Firefox {
        assert_eq!(
            report.line(),
            "open=6 pending=4 protocol=http/1.1 connections=6"
        );
    }
}

/// The most SSE streams an engine was seen to open to one HTTP/1.1 host (see below).
fn most_open_over_http1(engine: Engine) -> usize {
    match engine {
        Engine::Chromium | Engine::Webkit => 6,
        Engine::Firefox => 7,
    }
}

/// The six-per-host wall: each open stream on its own connection, the other tabs waiting.
/// Chromium and WebKit: exactly 6, every run (measured). Firefox: 6 in most runs, 7 in some (measured: 7 in one
/// run of about ten): its per-host limit (`network.http.max-persistent-connections-per-server`,
/// 6) caps the connections it *opens* for ordinary requests, but page loads may open a few
/// beyond it (urgent-start requests, `network.http.max-urgent-start-excessive-connections-per-host`)
/// and a waiting EventSource may then reuse that idle connection.
fn assert_the_http1_wall(engine: Engine, report: &TabsReport) {
    let most = most_open_over_http1(engine);
    assert!((6..=most).contains(&report.open), "{engine}: {report:#?}");
    assert_eq!(report.open + report.pending, 10, "{report:#?}");
    assert_eq!(report.connections, report.open, "one connection per stream");
}

async fn https_with_http1_only_still_stops_at_six(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500"]).await;
    let url = format!("https://localhost:{}/", server.https_h1.port());
    let report = tabs(engine, &server, &url, 10).await;
    assert_the_http1_wall(engine, &report);
    assert_eq!(
        report.protocol, "http/1.1",
        "TLS alone does not bring HTTP/2"
    );
}

async fn http2_opens_all_ten_on_one_connection(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500"]).await;
    let url = format!("https://localhost:{}/", server.https.port());
    let report = tabs(engine, &server, &url, 10).await;
    assert_eq!((report.open, report.pending), (10, 0), "{report:#?}");
    assert_eq!(report.protocol, "h2");
    assert_eq!(
        report.connections, 1,
        "every tab's stream on one connection"
    );
    assert!(
        report.tabs.iter().all(|t| t.events >= 2),
        "all of them tick: {report:#?}"
    );
}

async fn http2_stops_at_the_servers_max_concurrent_streams(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500", "--h2-max-streams", "5"]).await;
    let url = format!("https://localhost:{}/", server.https.port());
    let report = tabs(engine, &server, &url, 10).await;
    assert_eq!((report.open, report.pending), (5, 5), "{report:#?}");
    assert_eq!(report.protocol, "h2");
    assert_eq!(
        report.connections, 1,
        "the browser waits rather than open a second connection"
    );
}

async fn a_timed_out_stream_reconnects_after_retry_with_last_event_id_and_no_gap(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "250"]).await;
    let browser = launch(engine, &server).await;
    let url = format!(
        "http://127.0.0.1:{}/?timeout=3&retry=1500",
        server.http.port()
    );
    let page = browser.page(&url).await.expect("clock page");
    until(&page, sselab::browser::RECONNECTED_AND_TICKING).await;
    let lab: Value = eval(&page, "window.sselab").await.expect("page state");
    browser.close().await;

    let (delay, sent) = assert_reconnected_with_last_event_id(&lab);
    eprintln!("{engine}: reconnected {delay} ms after the error, Last-Event-ID {sent}");
    assert!(server.state.streams.stats().resumed_with_last_event_id >= 1);
}

async fn a_finished_order_page_stops_reconnecting(engine: Engine) {
    let server = TestServer::start(&["--retry", "300"]).await;
    // The browser first: launching it can take seconds on a busy machine, and the order's
    // clock must start only when the page can open right after it.
    let browser = launch(engine, &server).await;
    let api = server.client(Via::H1).await;
    let id = crate::util::create_order(&api, json!({"steps": 2, "interval_ms": 2000})).await;
    let url = format!("http://127.0.0.1:{}/orders/{id}", server.http.port());
    let page = browser.page(&url).await.expect("order page");
    until(&page, "window.orderPage.finished === 'done'").await;
    // The server closed the stream; the browser reconnects after 300 ms, gets 204, and stops.
    until(&page, "window.orderPage.readyState === 2").await;
    // Closed now; it must stay closed: wait several retry periods (300 ms) for a reopen that
    // must not come.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state: Value = eval(&page, "window.orderPage").await.expect("page state");
    browser.close().await;
    assert_eq!(state["readyState"], 2, "EventSource CLOSED: {state}");
    assert_eq!(state["opens"], 1, "never opened again: {state}");
    let progress: Vec<u64> = state["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["progress"].as_u64().expect("progress"))
        .collect();
    assert_eq!(progress, [0, 50, 100, 100]);
    assert_eq!(
        server.state.streams.stats().opened_total,
        1,
        "the 204 opened no stream"
    );
}

async fn the_lab_page_shows_six_waiting_four_and_ten_on_one_connection(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500"]).await;
    let browser = launch(engine, &server).await;
    let lab = lab_with_runs(&browser, &server, PROBE_TIMEOUT).await;
    let most = most_open_over_http1(engine) as u64;
    // Settled: both HTTP/1.1 runs at the wall (6, or 7 in Firefox: see assert_the_http1_wall)
    // and the HTTP/2 run all open on one connection.
    until_runs(&lab, |runs| {
        runs.len() == 3
            && runs.iter().all(|run| match run["run"].as_str() {
                Some("https") => ten_on_one_http2_connection(run),
                _ => at_the_http1_wall(run, most),
            })
    })
    .await;

    // The dashboard (served over HTTP/2, so it does not queue behind the six) agrees with the
    // page, and its chart's legend with its numbers: all read in one go, once the server
    // counts what the page shows.
    let dashboard = browser
        .page(&format!(
            "https://localhost:{}/lab/dashboard",
            server.https.port()
        ))
        .await
        .expect("dashboard");
    until(
        &dashboard,
        "document.querySelector('#chart path[data-series=\"http HTTP/1.1 streams\"]')",
    )
    .await;
    let mut seen = Value::Null;
    for _ in 0..200 {
        let page = runs(&lab).await;
        let (stats, legend): (Value, Vec<(String, String)>) = eval(
            &dashboard,
            "[window.lastStats, [...document.querySelectorAll('#chart-legend li')].map(li => [li.dataset.series, li.dataset.value])]",
        )
        .await
        .expect("stats and legend");
        let open_of = |run: &str| -> u64 {
            let run = page
                .iter()
                .find(|r| r["run"] == run)
                .unwrap_or_else(|| panic!("no {run} run in {page:?}"));
            number(run, "open")
        };
        let (http, https_h1, https) = (open_of("http"), open_of("https-h1"), open_of("https"));
        let server_open = &stats["streams"]["open_by_listener"];
        let agree = server_open["http"]["HTTP/1.1"] == http
            && server_open["https-h1"]["HTTP/1.1"] == https_h1
            && server_open["https"]["HTTP/2"] == https + 1
            && [
                ("http HTTP/1.1 streams", http),
                ("https-h1 HTTP/1.1 streams", https_h1),
                ("https HTTP/2 streams", https + 1),
            ]
            .iter()
            .all(|(series, value)| legend.contains(&(series.to_string(), value.to_string())));
        if agree {
            browser.close().await;
            for (run, open) in [("http", http), ("https-h1", https_h1)] {
                assert!(
                    (6..=most).contains(&open),
                    "{engine}: {run} shows {open} open: {page:?}"
                );
            }
            assert_eq!(https, 10, "ten lab streams on HTTP/2: {page:?}");
            if engine == Engine::Chromium {
                assert_eq!(
                    (http, https_h1),
                    (6, 6),
                    "Chromium holds exactly six, every run"
                );
            }
            return;
        }
        seen = json!({ "page": page, "stats": stats, "legend": legend });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dashboard never agreed with the page (ten lab streams and its own): {seen}");
}

async fn six_http1_streams_block_a_fetch_and_a_new_tab_on_the_same_origin(engine: Engine) {
    // Streams that never end, so no connection frees up while the probe waits.
    let server = TestServer::start(&["--tick-ms", "500", "--timeout", "0"]).await;
    let url = format!("http://127.0.0.1:{}/", server.http.port());
    let (report, probe) = probed_tabs(engine, &server, &url).await;
    assert_the_http1_wall(engine, &report);
    if engine == Engine::Firefox {
        // Measured in Firefox: the fetch blocked in some runs and took 6 ms in others, on the
        // seventh connection it kept from loading the pages (see assert_the_http1_wall); the
        // new tab's page was blocked in most runs and loaded in 78 ms in one (scripts/test.sh):
        // a page load is an urgent-start request, which Firefox lets past the per-host limit.
        // Either way it is never slow: blocked, or milliseconds on an extra connection.
        for (what, time) in [
            ("fetch('/proto') from an open tab", &probe.fetch),
            ("an 11th tab's page", &probe.nav),
        ] {
            assert!(
                *time == ProbeTime::Blocked || time.millis().is_some_and(|ms| ms < FAST),
                "firefox {what}: {probe:?}"
            );
        }
        return;
    }
    assert_eq!(
        probe.fetch,
        ProbeTime::Blocked,
        "fetch('/proto') from an open tab: {probe:?}"
    );
    assert_eq!(
        probe.nav,
        ProbeTime::Blocked,
        "an 11th tab's page: {probe:?}"
    );
    assert_eq!(
        probe.fields(),
        "probe_fetch=blocked probe_nav=blocked",
        "the words `sselab tabs --probe` prints"
    );
}

/// Ten tabs on one HTTP/2 connection, all ticking, and beside them a fetch and an 11th tab's
/// page in milliseconds: [`http2_opens_all_ten_on_one_connection`]'s claim and the probe's with
/// one settle (Chromium and Firefox run this one; WebKit that one, beside its other claims).
async fn over_http2_a_fetch_and_a_new_tab_take_milliseconds_beside_ten_streams(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500", "--timeout", "0"]).await;
    let url = format!("https://localhost:{}/", server.https.port());
    let (report, probe) = probed_tabs(engine, &server, &url).await;
    assert_eq!(
        report.line(),
        "open=10 pending=0 protocol=h2 connections=1",
        "every tab's stream on one connection: {report:#?}"
    );
    assert!(
        report.tabs.iter().all(|t| t.events >= 2),
        "all of them tick: {report:#?}"
    );
    crate::util::browser::assert_probe_fast(&probe);
}

async fn the_lab_probe_is_blocked_on_both_http1_targets_and_takes_milliseconds_over_http2(
    engine: Engine,
) {
    let server = TestServer::start(&["--tick-ms", "500", "--timeout", "0"]).await;
    let browser = launch(engine, &server).await;
    let lab = lab_with_runs(&browser, &server, PROBE_TIMEOUT).await;
    let probes = until_runs(&lab, |runs| {
        runs.len() == 3
            && runs
                .iter()
                .all(|run| run["probeFetch"].is_string() && run["probeImage"].is_string())
    })
    .await;
    browser.close().await;
    eprintln!("measured in /lab: {probes:?}");
    let probe = |run: &str| {
        probes
            .iter()
            .find(|p| p["run"] == run)
            .cloned()
            .unwrap_or_else(|| panic!("no {run} run in {probes:?}"))
    };
    // TLS alone changes nothing: it is the protocol.
    for run in ["http", "https-h1"] {
        let data = probe(run);
        let (fetch, image) = (data["probeFetch"].as_str(), data["probeImage"].as_str());
        if engine == Engine::Firefox {
            // Measured in Firefox: the fetch blocked on both; the image blocked on http and
            // took 12-58 ms on https-h1, on a seventh connection (see assert_the_http1_wall).
            for (what, value) in [("fetch", fetch), ("image", image)] {
                let fast = value
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|ms| ms < FAST);
                assert!(
                    value == Some("blocked") || fast,
                    "firefox {run} {what}: {data}"
                );
            }
            continue;
        }
        assert_eq!(
            (fetch, image),
            (Some("blocked"), Some("blocked")),
            "{run}: {data}"
        );
        // Blocked, the run says, because all six connections are held by its streams.
        assert_eq!(
            data["probeBlockedBy"], "http1-connections-per-host",
            "{data}"
        );
        assert_eq!(number(&data, "open"), 6, "{data}");
    }
    let data = probe("https");
    for what in ["probeFetch", "probeImage"] {
        assert!(number(&data, what) < FAST, "{data}");
    }
}

async fn at_the_servers_http2_stream_limit_the_probe_waits_too(engine: Engine) {
    let server = TestServer::start(&[
        "--tick-ms",
        "500",
        "--timeout",
        "0",
        "--h2-max-streams",
        "5",
    ])
    .await;
    let url = format!("https://localhost:{}/", server.https.port());
    let (report, probe) = probed_tabs(engine, &server, &url).await;
    assert_eq!((report.open, report.pending), (5, 5), "{report:#?}");
    assert_eq!(
        probe.fields(),
        "probe_fetch=blocked probe_nav=blocked",
        "the one connection is full: {probe:?}"
    );
}

/// WebKit's core claims (the table's facts), side by side in one claim: each on its own
/// server, in its own session (a MiniBrowser of its own, so a connection pool of its own), so
/// the claim costs about the longest of them rather than their sum (the test budget).
async fn the_readme_tables_facts_side_by_side(engine: Engine) {
    tokio::join!(
        plain_http1_opens_six_streams_and_four_tabs_wait(engine),
        https_with_http1_only_still_stops_at_six(engine),
        http2_opens_all_ten_on_one_connection(engine),
        http2_stops_at_the_servers_max_concurrent_streams(engine),
        a_timed_out_stream_reconnects_after_retry_with_last_event_id_and_no_gap(engine),
        six_http1_streams_block_a_fetch_and_a_new_tab_on_the_same_origin(engine),
    );
}

crate::in_every_engine!(
    plain_http1_opens_six_streams_and_four_tabs_wait,
    https_with_http1_only_still_stops_at_six,
    http2_stops_at_the_servers_max_concurrent_streams,
    a_timed_out_stream_reconnects_after_retry_with_last_event_id_and_no_gap,
    a_finished_order_page_stops_reconnecting,
    the_lab_page_shows_six_waiting_four_and_ten_on_one_connection,
    six_http1_streams_block_a_fetch_and_a_new_tab_on_the_same_origin,
    over_http2_a_fetch_and_a_new_tab_take_milliseconds_beside_ten_streams,
    the_lab_probe_is_blocked_on_both_http1_targets_and_takes_milliseconds_over_http2,
    at_the_servers_http2_stream_limit_the_probe_waits_too;
    webkit: the_readme_tables_facts_side_by_side,
);
