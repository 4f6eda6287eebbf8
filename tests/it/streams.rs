//! The clock and demo streams over every listener and protocol, as the README claims them.

use std::time::{Duration, Instant};

use crate::util::{Events, TestServer, Via, header};
use http::{StatusCode, Version};

const FAST: &[&str] = &["--tick-ms", "100"];

#[tokio::test(flavor = "multi_thread")]
async fn h1_stream_sends_retry_first_then_ticks_with_increasing_ids() {
    let server = TestServer::start(FAST).await;
    let client = server.client(Via::H1).await;
    let mut events = Events::new(client.get("/sse/hello").await);

    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.version, Version::HTTP_11);
    assert_eq!(
        header(&events.headers, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(header(&events.headers, "cache-control"), "no-cache");
    assert_eq!(header(&events.headers, "x-accel-buffering"), "no");
    let connected = events.connected().await;
    let retry = connected["retry"]
        .as_u64()
        .expect("the first frame carries retry:");
    assert!(
        (5000..=6000).contains(&retry),
        "5 s plus up to 20 % jitter by default, got {retry}"
    );
    assert!(
        connected["id"].is_null(),
        "a clock's connected event carries no id: the ticks do"
    );
    assert_eq!(connected["protocol"], "HTTP/1.1");
    assert_eq!(connected["listener"], "http");
    assert!(connected["connection_id"].as_u64().expect("connection id") > 0);
    let ticks = events.take(4).await;
    let ids: Vec<&str> = ticks.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    for tick in &ticks {
        chrono::NaiveDateTime::parse_from_str(&tick.data, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("{:?} is not yyyy-MM-dd HH:mm:ss: {e}", tick.data));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_negotiates_http2_and_the_control_listener_stays_on_http1() {
    let server = TestServer::start(FAST).await;

    let h2 = server.client(Via::H2Tls).await;
    let proto = crate::util::json(h2.get("/proto").await).await;
    assert_eq!(proto["http_version"], "HTTP/2");
    assert_eq!(proto["alpn"], "h2");
    assert_eq!(proto["listener"], "https");
    assert_eq!(proto["tls"], true);
    let mut events = Events::new(h2.get("/sse/hello").await);
    assert_eq!(events.version, Version::HTTP_2);
    assert_eq!(events.connected().await["protocol"], "HTTP/2");
    assert_eq!(events.take(2).await[1].id, "2");

    // The client offers h2 first; the control listener still picks http/1.1.
    let h1 = server.client(Via::H1Tls).await;
    let proto = crate::util::json(h1.get("/proto").await).await;
    assert_eq!(proto["http_version"], "HTTP/1.1");
    assert_eq!(proto["alpn"], "http/1.1");
    assert_eq!(proto["listener"], "https-h1");
    let mut events = Events::new(h1.get("/sse/hello").await);
    assert_eq!(events.version, Version::HTTP_11);
    assert_eq!(events.connected().await["listener"], "https-h1");
    assert_eq!(events.take(2).await[1].id, "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_port_answers_http2_with_prior_knowledge() {
    let server = TestServer::start(FAST).await;
    let client = server.client(Via::H2c).await;
    let proto = crate::util::json(client.get("/proto").await).await;
    assert_eq!(proto["http_version"], "HTTP/2");
    assert_eq!(proto["listener"], "http");
    assert_eq!(proto["tls"], false);
    let mut events = Events::new(client.get("/sse/hello").await);
    assert_eq!(events.version, Version::HTTP_2);
    events.connected().await;
    assert_eq!(events.take(3).await[2].id, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn proto_counts_requests_per_connection_and_numbers_connections() {
    let server = TestServer::start(&[]).await;
    for via in [Via::H1, Via::H2c, Via::H2Tls, Via::H1Tls] {
        let client = server.client(via).await;
        let first = crate::util::json(client.get("/proto").await).await;
        let second = crate::util::json(client.get("/proto").await).await;
        assert_eq!(first["requests_on_connection"], 1, "{via:?}");
        assert_eq!(second["requests_on_connection"], 2, "{via:?}");
        assert_eq!(first["connection_id"], second["connection_id"], "{via:?}");
        assert!(
            first["remote"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.1:")
        );
    }
}

/// Read a stream to its end; gives how many events came before it.
async fn events_until_the_end(events: &mut Events) -> usize {
    let mut received = 0;
    while events.next().await.is_some() {
        received += 1;
    }
    received
}

/// Streams ended by their timeout, the real clock's only check here: how long one lasts may
/// be off by this much on a busy machine, and no more.
const TIMER_SLACK: Duration = Duration::from_secs(2);

/// The flag's timeout, a longer one asked in the query, and `timeout=0`, end to end on the
/// real clock. The timings themselves are unit tests on paused time: the timeout in
/// `sse::drive::tests::the_timeout_ends_the_stream_without_a_frame`, no timeout in
/// `…::without_a_timeout_or_keep_alive_an_idle_stream_stays_open_and_silent`, keep-alives in
/// `…::keep_alive_comes_one_idle_period_after_the_last_frame`, and the tick period in
/// `http::clock::tests`.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_ends_the_stream_the_query_overrides_it_and_zero_never_expires() {
    let server = TestServer::start(&["--tick-ms", "100", "--timeout", "1"]).await;
    let client = server.client(Via::H2c).await;
    let started = Instant::now();
    let mut by_flag = Events::new(client.get("/sse/hello").await);
    let mut by_query = Events::new(client.get("/sse/hello?timeout=2&retry=1500").await);
    let mut never = Events::new(client.get("/sse/hello?timeout=0").await);
    by_flag.connected().await;
    assert_eq!(by_query.connected().await["retry"], 1500);
    never.connected().await;

    for (events, timeout) in [(&mut by_flag, 1), (&mut by_query, 2)] {
        let received = events_until_the_end(events).await;
        let lasted = started.elapsed();
        let timeout = Duration::from_secs(timeout);
        assert!(
            received >= 2,
            "ticks before the {timeout:?} timeout, got {received}"
        );
        // A little early: the server's timer starts after this clock did, but may round.
        assert!(
            lasted >= timeout - Duration::from_millis(100) && lasted < timeout + TIMER_SLACK,
            "ended after {lasted:?}, for a {timeout:?} timeout"
        );
    }
    // Both ended by their timeout; timeout=0 goes on.
    crate::util::eventually("two streams counted closed by their timeout", || {
        server.state.streams.stats().close_reasons.get("timeout") == Some(&2)
    })
    .await;
    assert_eq!(server.state.streams.open_streams().total(), 1);
    assert!(never.next().await.is_some(), "timeout=0 keeps streaming");
}

#[tokio::test(flavor = "multi_thread")]
async fn last_event_id_continues_after_the_given_id() {
    let server = TestServer::start(FAST).await;
    for via in [Via::H1, Via::H2Tls] {
        let client = server.client(via).await;
        let response = client
            .get_with("/sse/hello", &[("last-event-id", "41")])
            .await;
        let mut events = Events::new(response);
        assert_eq!(
            events.connected().await["last_event_id"],
            41,
            "the server saw it"
        );
        let ids: Vec<String> = events.take(3).await.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["42", "43", "44"], "{via:?}");
    }
}

/// What a tab taking over a shared stream does (sselab.js): an EventSource cannot set headers,
/// so it puts the last id in the URL; the browser's own reconnects send the header, which wins.
#[tokio::test(flavor = "multi_thread")]
async fn last_event_id_may_come_as_a_query_parameter_and_the_header_wins() {
    let server = TestServer::start(FAST).await;
    for via in [Via::H1, Via::H2Tls] {
        let client = server.client(via).await;
        let mut events = Events::new(client.get("/sse/hello?lastEventId=41").await);
        assert_eq!(events.connected().await["last_event_id"], 41, "{via:?}");
        assert_eq!(crate::util::ids(&events.take(2).await), [42, 43], "{via:?}");

        // A stream holds an HTTP/1.1 connection: the next one needs its own.
        let both = server
            .client(via)
            .await
            .get_with("/sse/hello?lastEventId=41", &[("last-event-id", "7")])
            .await;
        let mut events = Events::new(both);
        assert_eq!(events.connected().await["last_event_id"], 7, "{via:?}");
        assert_eq!(
            crate::util::ids(&events.take(1).await),
            [8],
            "the header wins"
        );
    }
    let client = server.client(Via::H2Tls).await;
    crate::util::assert_one_line(
        client.get("/sse/hello?lastEventId=x").await,
        StatusCode::BAD_REQUEST,
        "lastEventId must be a whole number",
    )
    .await;
    // Every stream that resumes reads it the same way.
    for path in [
        "/sse/topics/news",
        "/sse/sessions/alice",
        "/sse/demo?id=d",
        "/sse/orders/o-1",
        "/getOrderDetail?orderId=o-1",
    ] {
        let separator = if path.contains('?') { '&' } else { '?' };
        crate::util::assert_one_line(
            client
                .get(&format!("{path}{separator}lastEventId=-1"))
                .await,
            StatusCode::BAD_REQUEST,
            "lastEventId must be a whole number",
        )
        .await;
    }
    let (_topic, connected) = client
        .subscribe("/sse/topics/news?lastEventId=3", None)
        .await;
    assert_eq!(connected["last_event_id"], 3);
}

/// The `--keepalive` flag reaches the wire; when the comments come is a unit test on paused
/// time (`sse::drive::tests::keep_alive_comes_one_idle_period_after_the_last_frame`).
#[tokio::test(flavor = "multi_thread")]
async fn keepalive_comments_flow_on_an_idle_stream() {
    // Ticks once an hour, keep-alive every second: only comments arrive.
    let server = TestServer::start(&["--tick-ms", "3600000", "--keepalive", "1"]).await;
    let client = server.client(Via::H1).await;
    let mut events = Events::new(client.get("/sse/hello?timeout=0").await);
    events.connected().await;
    assert_eq!(events.next().await.expect("first tick at once").id, "1");
    events.only_comments_until(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_ends_with_an_end_event_and_then_answers_204() {
    let server = TestServer::start(&["--tick-ms", "100", "--demo-period", "2"]).await;
    let client = server.client(Via::H2Tls).await;
    let mut events = Events::new(client.get("/sse/demo?id=alice").await);
    assert_eq!(events.status, StatusCode::OK);
    let mut last = None;
    while let Some(event) = events.next().await {
        last = Some(event);
    }
    let last = last.expect("at least the end event");
    assert_eq!(last.event, "end");

    let again = client
        .get_with("/sse/demo?id=alice", &[("last-event-id", &last.id)])
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    // Another id is unaffected.
    let other = Events::new(client.get("/sse/demo?id=bob").await);
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_one_line_4xx() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H1).await;
    let cases = [
        (
            "/sse/hello?timeout=abc",
            StatusCode::BAD_REQUEST,
            "timeout must be",
        ),
        (
            "/sse/hello?timeout=-1",
            StatusCode::BAD_REQUEST,
            "timeout must be",
        ),
        (
            "/sse/hello?timeout=99999999999",
            StatusCode::BAD_REQUEST,
            "timeout must be",
        ),
        (
            "/sse/hello?retry=soon",
            StatusCode::BAD_REQUEST,
            "retry must be",
        ),
        ("/sse/demo", StatusCode::BAD_REQUEST, "missing ?id="),
        (
            "/sse/demo?id=no%20spaces",
            StatusCode::BAD_REQUEST,
            "an id must be",
        ),
        (
            "/no/such/thing",
            StatusCode::NOT_FOUND,
            "no such path: /no/such/thing",
        ),
    ];
    for (path, status, start) in cases {
        let response = client.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let body = crate::util::text(response).await;
        assert!(body.starts_with(start), "{path}: {body:?}");
        assert_eq!(body.lines().count(), 1, "{path}: one line, got {body:?}");
    }
    let response = client
        .get_with("/sse/hello", &[("last-event-id", "seven")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        crate::util::text(response)
            .await
            .starts_with("Last-Event-ID must be a whole number")
    );

    let post = client
        .send(
            client
                .request("POST", "/sse/hello")
                .body(Default::default())
                .expect("request"),
        )
        .await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn over_max_streams_gets_503_with_retry_after_and_frees_on_close() {
    let server = TestServer::start(&["--max-streams", "2"]).await;
    let client = server.client(Via::H2c).await;
    let first = Events::new(client.get("/sse/hello").await);
    let _second = Events::new(client.get("/sse/hello").await);
    assert_eq!(first.status, StatusCode::OK);

    let refused = client.get("/sse/hello").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(refused.headers(), "retry-after"), "5");
    let body = crate::util::text(refused).await;
    assert!(body.contains("--max-streams 2"), "{body:?}");

    // Closing one stream frees exactly one place.
    drop(first);
    crate::util::eventually("the closed stream is counted out", || {
        server.state.streams.open_streams().total() == 1
    })
    .await;
    let third = client.get("/sse/hello").await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(
        client.get("/sse/hello").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_and_stream_headers_follow_the_flag() {
    let server = TestServer::start(&["--cors-origin", "http://lab.example:8080"]).await;
    let client = server.client(Via::H1).await;
    let preflight = client
        .send(
            client
                .request("OPTIONS", "/sse/hello")
                .header("origin", "http://lab.example:8080")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "last-event-id")
                .body(Default::default())
                .expect("request"),
        )
        .await;
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        "http://lab.example:8080"
    );
    assert!(header(headers, "access-control-allow-headers").contains("last-event-id"));

    let streaming = server.client(Via::H1).await;
    let stream = streaming
        .get_with("/sse/hello", &[("origin", "http://lab.example:8080")])
        .await;
    assert_eq!(
        header(stream.headers(), "access-control-allow-origin"),
        "http://lab.example:8080"
    );
    let other = client
        .get_with("/proto", &[("origin", "http://evil.example")])
        .await;
    assert_eq!(header(other.headers(), "access-control-allow-origin"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn index_page_shows_how_it_arrived_and_links_every_listener() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2Tls).await;
    let page = crate::util::text(client.get("/").await).await;
    assert!(
        page.contains("new SharedEventSource('/sse/hello'")
            && page.contains("<script src=\"/sselab.js\">"),
        "the seed's clock page, on sselab.js (share=none is a plain EventSource)"
    );
    assert!(
        page.contains("HTTP/2 on the https listener"),
        "how it arrived"
    );
    for port in [
        server.http.port(),
        server.https.port(),
        server.https_h1.port(),
    ] {
        assert!(
            page.contains(&format!("localhost:{port}/")),
            "links to port {port}"
        );
    }
    let health = crate::util::json(client.get("/healthz").await).await;
    assert_eq!(health["status"], "ok");
}
