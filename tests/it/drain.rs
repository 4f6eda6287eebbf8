//! No reconnect storm after a restart, as the README claims it: every stream's first `retry:`
//! is jittered within `[retry, retry × (1 + jitter)]`, and at shutdown every open stream —
//! over HTTP/1.1 and HTTP/2, on every kind of endpoint — gets a last frame whose `retry:`
//! spreads the clients over `[retry, retry + drain spread]` before it ends. And
//! `sselab bench reconnect` sees it from the clients' side across a real restart.

use crate::util::{Client, Events, LONG_GRACE, TestServer, Via, bench};
use serde_json::json;
use sselab::bench::ReconnectReport;
use sselab::sse::parser::ParsedEvent;

/// No ticks while the tests hold streams: only the frames under test arrive.
const NO_TICKS: &[&str] = &["--tick-ms", "3600000", "--demo-period", "3600"];

/// Every path that opens a stream, one per kind of endpoint; `{i}` makes sessions unique.
/// Orders need an order to follow, made on `api` first. The demo ends by itself at the next
/// whole hour of the wall clock, so a test that reads streams to their end leaves it out.
async fn stream_paths(api: &Client, count: usize, demo: bool) -> Vec<String> {
    let order = crate::util::create_order(api, json!({"steps": 1, "interval_ms": 3_600_000})).await;
    (0..count)
        .map(|i| match i % 7 {
            5 if !demo => "/sse/hello?timeout=0".to_string(),
            0 => "/sse/hello?timeout=0".to_string(),
            1 => "/sse/topics/restart".to_string(),
            2 => format!("/sse/sessions/user-{i}"),
            3 => format!("/sse/orders/{order}"),
            4 => format!("/getOrderDetail?orderId={order}"),
            5 => format!("/sse/demo?id=demo-{i}"),
            _ => "/sse/stats".to_string(),
        })
        .collect()
}

/// Open `count` streams, half over HTTP/1.1 (a connection each) and half on one HTTP/2
/// connection, across every endpoint; each is read up to its first event.
async fn open_streams(
    server: &TestServer,
    count: usize,
    demo: bool,
) -> Vec<(String, Events, ParsedEvent)> {
    let api = server.client(Via::H1).await;
    let h2 = server.client(Via::H2Tls).await;
    let mut opened = Vec::new();
    for (i, path) in stream_paths(&api, count, demo)
        .await
        .into_iter()
        .enumerate()
    {
        let client = if i % 2 == 0 {
            server.client(Via::H1).await
        } else {
            h2.clone()
        };
        let mut events = Events::new(client.get(&path).await);
        assert_eq!(events.status, http::StatusCode::OK, "{path}");
        let first = events.next().await.expect("a first event");
        opened.push((path, events, first));
    }
    opened
}

/// Read a stream to its end; gives its last event.
async fn last_event(events: &mut Events) -> Option<ParsedEvent> {
    let mut last = None;
    while let Some(event) = events.next().await {
        last = Some(event);
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn at_shutdown_sixty_streams_are_told_to_come_back_across_the_whole_spread() {
    let (retry, spread) = (1000, 10_000);
    let mut flags = vec!["--retry", "1000", "--drain-spread", "10"];
    flags.extend(LONG_GRACE);
    flags.extend(NO_TICKS);
    let mut server = TestServer::start(&flags).await;
    let mut streams = open_streams(&server, 60, false).await;
    crate::util::eventually("60 streams open", || {
        server.state.streams.open_streams().total() == 60
    })
    .await;

    // The spread is in what the clients are told, not in how long the server waits.
    server.stop_promptly().await;

    let mut told = Vec::new();
    for (path, events, _) in &mut streams {
        let last = last_event(events).await.expect("a last frame");
        assert!(events.ended, "{path}: the stream ended after it");
        assert_eq!(last.event, "shutdown", "{path}: {last:?}");
        let ms = last.retry.expect("the shutdown frame sets retry:");
        let data: serde_json::Value = serde_json::from_str(&last.data).expect("JSON");
        assert_eq!(data, json!({ "retry": ms }), "{path}");
        assert!(
            (retry..=retry + spread).contains(&ms),
            "{path}: {ms} ms is outside [{retry}, {}]",
            retry + spread
        );
        told.push(ms);
    }
    // 60 independent uniform draws: the smallest misses the lowest quarter of the window,
    // or the largest the highest quarter, each with probability 0.75^60 ≈ 3e-8.
    let (lowest, highest) = (told.iter().min(), told.iter().max());
    let quarter = spread / 4;
    assert!(
        lowest < Some(&(retry + quarter)),
        "the earliest comes back in the first quarter: {told:?}"
    );
    assert!(
        highest > Some(&(retry + spread - quarter)),
        "the latest in the last quarter: {told:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_retry_is_jittered_per_stream_and_a_requested_retry_is_kept() {
    let mut flags = vec!["--retry", "1000", "--retry-jitter", "0.5"];
    flags.extend(NO_TICKS);
    let server = TestServer::start(&flags).await;
    let firsts: Vec<u64> = open_streams(&server, 42, true)
        .await
        .iter()
        .map(|(path, _, first)| {
            let ms = first.retry.expect("the first frame sets retry:");
            assert!((1000..=1500).contains(&ms), "{path}: {ms} ms");
            ms
        })
        .collect();
    // 42 draws from 501 values: all equal with probability 501^-41.
    assert!(
        firsts.iter().any(|ms| *ms != firsts[0]),
        "jittered per stream, not one value for all: {firsts:?}"
    );

    // The clock and the demo take `?retry=`: asked for, it is sent as asked.
    let client = server.client(Via::H2c).await;
    for path in ["/sse/hello?retry=1500", "/sse/demo?id=asked&retry=1500"] {
        for _ in 0..5 {
            let mut events = Events::new(client.get(path).await);
            let first = events.next().await.expect("first event");
            assert_eq!(first.retry, Some(1500), "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_jitter_zero_every_stream_gets_exactly_retry() {
    let mut flags = vec!["--retry", "1234", "--retry-jitter", "0"];
    flags.extend(NO_TICKS);
    let server = TestServer::start(&flags).await;
    for (path, _, first) in open_streams(&server, 14, true).await {
        assert_eq!(first.retry, Some(1234), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_drain_spread_zero_streams_just_end() {
    let mut flags = vec!["--drain-spread", "0"];
    flags.extend(NO_TICKS);
    let mut server = TestServer::start(&flags).await;
    let mut streams = open_streams(&server, 14, true).await;
    server.stop().await;
    for (path, events, _) in &mut streams {
        if let Some(last) = last_event(events).await {
            assert_ne!(last.event, "shutdown", "{path}: no last frame when off");
        }
        assert!(events.ended, "{path}");
    }
}

/// `sselab bench reconnect` against this server's `/sse/hello`, run in the background.
fn reconnect_bench(
    server: &TestServer,
    streams: usize,
    proto: &str,
) -> tokio::task::JoinHandle<anyhow::Result<ReconnectReport>> {
    let url = format!(
        "http://127.0.0.1:{}/sse/hello?timeout=0",
        server.http.port()
    );
    let args = bench::reconnect(&[
        "--url",
        &url,
        "--streams",
        &streams.to_string(),
        "--proto",
        proto,
        "--connections",
        "2",
        "--duration",
        "30",
    ]);
    tokio::spawn(sselab::bench::reconnect::run(args))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconnect_bench_sees_every_stream_come_back_after_a_restart() {
    let spread = [
        "--retry",
        "500",
        "--retry-jitter",
        "0",
        "--drain-spread",
        "2",
    ];
    let no_spread = [
        "--retry",
        "500",
        "--retry-jitter",
        "0",
        "--drain-spread",
        "0",
    ];
    let with_flags = |flags: &[&'static str]| [flags, NO_TICKS].concat();
    let mut server = TestServer::start(&with_flags(&spread)).await;

    // With the spread, over HTTP/2 (h2c, two shared connections opened again after it).
    let bench = reconnect_bench(&server, 80, "h2c");
    // Each stream's `connected` and first tick (`id: 1`) are on their way before the restart.
    crate::util::eventually("80 streams open, each sent its first tick", || {
        server.state.streams.open_streams().total() == 80 && server.state.streams.sent().0 >= 160
    })
    .await;
    server.restart(&with_flags(&no_spread)).await;
    let spread_report = bench.await.expect("bench task").expect("bench runs");
    let text = spread_report.text();
    assert_eq!(
        (
            spread_report.established,
            spread_report.ended,
            spread_report.reconnected
        ),
        (80, 80, 80),
        "{text}"
    );
    assert!(spread_report.failures.is_empty(), "{text}");
    let told = spread_report.retry;
    assert!(told.min_ms >= 500.0 && told.max_ms <= 2500.0, "{text}");
    // 80 uniform draws over [500, 2500]: the smallest misses the first quarter, or the
    // largest the last, each with probability 0.75^80 ≈ 1e-10.
    assert!(told.min_ms < 1000.0 && told.max_ms > 2000.0, "{text}");
    // Nobody came back before the retry: it was told.
    assert!(
        spread_report.reconnect_after.min_ms >= told.min_ms,
        "{text}"
    );
    // Like a browser, each reconnect sent the Last-Event-ID of the tick it saw.
    assert_eq!(spread_report.resumed, 80, "{text}");
    assert_eq!(
        server.state.streams.stats().resumed_with_last_event_id,
        80,
        "{text}"
    );

    // Without it, over HTTP/1.1: every stream is told the same 500 ms.
    crate::util::eventually("the first run's streams closed", || {
        server.state.streams.open_streams().total() == 0
    })
    .await;
    let bench = reconnect_bench(&server, 40, "h1");
    crate::util::eventually("40 streams open", || {
        server.state.streams.open_streams().total() == 40
    })
    .await;
    server.restart(&with_flags(&spread)).await;
    let storm = bench.await.expect("bench task").expect("bench runs");
    let text = storm.text();
    assert_eq!((storm.ended, storm.reconnected), (40, 40), "{text}");
    assert_eq!(
        (storm.retry.min_ms, storm.retry.max_ms),
        (500.0, 500.0),
        "{text}"
    );
    assert!(storm.reconnect_after.min_ms >= 500.0, "{text}");
}
