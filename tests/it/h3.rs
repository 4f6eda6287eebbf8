//! The HTTP/3 listener, over a real QUIC connection with sselab's own HTTP/3 client: the same
//! endpoints as on the TCP listeners (sessions, topics, timeouts, replay, errors; orders are in
//! tests/orders.rs, over HTTP/2 and HTTP/3 alike), the stream registry's view of it, its stream
//! limit, its shutdown, and how it is advertised.

use std::task::Poll;

use crate::util::{Events, LONG_GRACE, PATIENCE, TestServer, Via, assert_one_line, header, ids};
use http::{StatusCode, Version};
use serde_json::json;

const FAST: &[&str] = &["--tick-ms", "100"];

#[tokio::test(flavor = "multi_thread")]
async fn proto_reports_http3_and_a_clock_streams_over_it() {
    let server = TestServer::start(FAST).await;
    let client = server.client(Via::H3).await;
    let first = crate::util::json(client.get("/proto").await).await;
    let second = crate::util::json(client.get("/proto").await).await;
    assert_eq!(first["http_version"], "HTTP/3");
    assert_eq!(first["alpn"], "h3");
    assert_eq!(first["listener"], "h3");
    assert_eq!(first["tls"], true);
    assert_eq!(first["requests_on_connection"], 1);
    assert_eq!(second["requests_on_connection"], 2);
    assert_eq!(first["connection_id"], second["connection_id"]);

    let mut events = Events::new(client.get("/sse/hello").await);
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.version, Version::HTTP_3);
    assert_eq!(
        header(&events.headers, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    let connected = events.connected().await;
    assert_eq!(connected["protocol"], "HTTP/3");
    assert_eq!(connected["listener"], "h3");
    assert_eq!(ids(&events.take(3).await), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_over_http3_receives_what_is_posted_over_http3() {
    let server = TestServer::start(&[]).await;
    let subscriber = server.client(Via::H3).await;
    let poster = server.client(Via::H3).await;
    let (mut events, connected) = subscriber.subscribe("/sse/sessions/q", None).await;
    assert_eq!(connected["session"], "q");
    assert_eq!(connected["protocol"], "HTTP/3");

    let path = "/api/sessions/q/events";
    let answer = poster.post(path, "text/plain", "line one\nline two").await;
    assert_eq!(
        crate::util::accepted(answer).await,
        json!({"id": 1, "delivered": true})
    );
    let answer = poster
        .post_json(path, json!({"event": "chat", "data": {"n": 2}}))
        .await;
    assert_eq!(
        crate::util::accepted(answer).await,
        json!({"id": 2, "delivered": true})
    );
    let got = events.take(2).await;
    assert_eq!(got[0].data, "line one\nline two");
    assert_eq!(
        (got[1].event.as_str(), got[1].data.as_str()),
        ("chat", r#"{"n":2}"#)
    );

    let info = crate::util::json(poster.get("/api/sessions/q").await).await;
    assert_eq!(info["connected"], true);
    assert_eq!(info["protocol"], "HTTP/3");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_body_over_many_packets_arrives_whole_and_the_limit_holds() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H3).await;
    let (mut events, _) = client.subscribe("/sse/sessions/big", None).await;
    // Dozens of QUIC packets, under the server's 64 KiB body limit.
    let big: String = (0..60_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    crate::util::accepted(
        client
            .post("/api/sessions/big/events", "text/plain", big.clone())
            .await,
    )
    .await;
    assert_eq!(events.next().await.expect("the big event").data, big);

    let over = "x".repeat(70 * 1024);
    let answer = client
        .post("/api/sessions/big/events", "text/plain", over)
        .await;
    assert_one_line(
        answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is over",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_reaches_every_stream_multiplexed_on_one_quic_connection() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H3).await;
    let mut subscribers = Vec::new();
    for _ in 0..10 {
        subscribers.push(client.subscribe("/sse/topics/news", None).await.0);
    }
    for n in 1..=3 {
        crate::util::accepted(
            client
                .post("/api/topics/news/events", "text/plain", format!("n{n}"))
                .await,
        )
        .await;
    }
    for events in &mut subscribers {
        let data: Vec<String> = events.take(3).await.into_iter().map(|e| e.data).collect();
        assert_eq!(data, ["n1", "n2", "n3"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_ends_the_stream_and_zero_keeps_it() {
    let server = TestServer::start(FAST).await;
    let client = server.client(Via::H3).await;
    let mut ending = Events::new(client.get("/sse/hello?timeout=1&retry=1500").await);
    let mut never = Events::new(client.get("/sse/hello?timeout=0").await);
    assert_eq!(ending.connected().await["retry"], 1500);
    never.connected().await;
    let mut received = 0;
    while ending.next().await.is_some() {
        received += 1;
    }
    assert!(ending.ended);
    assert!(
        received >= 2,
        "ticks before the 1 s timeout, got {received}"
    );
    // The other stream on the same connection goes on past it.
    let after: u64 = never.take(15).await[14].id.parse().expect("numeric id");
    assert_eq!(after, 15);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_with_last_event_id_gets_the_missed_events_over_http3() {
    let server = TestServer::start(&[]).await;
    let poster = server.client(Via::H3).await;
    let subscriber = server.client(Via::H3).await;
    let (mut events, _) = subscriber.subscribe("/sse/sessions/k", None).await;
    for n in 1..=3 {
        let path = "/api/sessions/k/events";
        crate::util::accepted(poster.post(path, "text/plain", format!("e{n}")).await).await;
    }
    let last = events.take(3).await[2].id.clone();
    subscriber.close();
    crate::util::eventually("the session shows as disconnected", || {
        server.state.hub.session("k").is_some_and(|s| !s.connected)
    })
    .await;
    for n in 4..=10 {
        let answer = poster
            .post("/api/sessions/k/events", "text/plain", format!("e{n}"))
            .await;
        assert_eq!(
            crate::util::json(answer).await,
            json!({"id": n, "delivered": false})
        );
    }
    let again = server.client(Via::H3).await;
    let (mut events, connected) = again.subscribe("/sse/sessions/k", Some(&last)).await;
    assert_eq!(connected["last_event_id"], 3);
    assert_eq!(connected["replayed"], 7);
    let replayed = events.take(7).await;
    assert_eq!(ids(&replayed), (4..=10).collect::<Vec<_>>());
    assert_eq!(replayed[0].data, "e4");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_one_line_4xx_over_http3() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H3).await;
    let no_such = client.get("/no/such/thing").await;
    assert_one_line(
        no_such,
        StatusCode::NOT_FOUND,
        "no such path: /no/such/thing",
    )
    .await;
    let bad_timeout = client.get("/sse/hello?timeout=abc").await;
    assert_one_line(bad_timeout, StatusCode::BAD_REQUEST, "timeout must be").await;
    let bad_id = client
        .get_with("/sse/hello", &[("last-event-id", "seven")])
        .await;
    assert_one_line(bad_id, StatusCode::BAD_REQUEST, "Last-Event-ID must be").await;
    let post = client.post("/sse/hello", "text/plain", "x").await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_counts_an_http3_stream_and_its_end_when_the_client_goes_away() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H3).await;
    let (events, _) = client.subscribe("/sse/topics/quiet?timeout=0", None).await;
    crate::util::eventually("one HTTP/3 stream open", || {
        let open = server.state.streams.open_streams();
        (open.http1, open.http2, open.http3) == (0, 0, 1)
    })
    .await;
    // Gone as a browser tab goes: nothing said, the stream and connection just dropped.
    drop(events);
    drop(client);
    crate::util::eventually("the HTTP/3 stream counted closed", || {
        server.state.streams.open_streams().http3 == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_h3_max_streams_a_request_waits_until_a_stream_ends() {
    let server = TestServer::start(&["--tick-ms", "100", "--h3-max-streams", "5"]).await;
    let client = server.client(Via::H3).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut events = Events::new(client.get("/sse/hello?timeout=0").await);
        events.connected().await;
        open.push(events);
    }
    let sixth = {
        let client = client.clone();
        tokio::spawn(async move { Events::new(client.get("/sse/hello?timeout=0").await) })
    };
    // QUIC grants no sixth stream: the server's limit leaves this connection no credit for
    // another request stream, so the request is not even sent while five are open. Opening
    // one now, synchronously in quinn, finds no credit (it would take it, were there any).
    let quic = client.quic().expect("HTTP/3 runs on QUIC");
    let mut opening = std::pin::pin!(quic.open_bi());
    let no_credit =
        std::future::poll_fn(|cx| Poll::Ready(opening.as_mut().poll(cx).is_pending())).await;
    assert!(no_credit, "QUIC granted a sixth stream with five open");
    let streams = server.state.streams.stats();
    assert_eq!((streams.open_total, streams.opened_total), (5, 5));

    // One ends (the client stops reading it); its stream is freed and the sixth goes out.
    drop(open.pop());
    let mut sixth = tokio::time::timeout(PATIENCE, sixth)
        .await
        .expect("the sixth stream answered once one ended")
        .expect("task");
    assert_eq!(sixth.connected().await["protocol"], "HTTP/3");
    assert!(server.state.streams.open_streams().http3 <= 5);
    // The other four kept streaming meanwhile.
    for events in &mut open {
        assert!(events.next().await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_http3_streams_and_closes_the_connections() {
    let mut server =
        TestServer::start(&[&LONG_GRACE[..], &["--tick-ms", "3600000"]].concat()).await;
    let clients = [server.client(Via::H3).await, server.client(Via::H3).await];
    let mut streams = Vec::new();
    for client in &clients {
        for _ in 0..3 {
            let mut events = Events::new(client.get("/sse/hello?timeout=0").await);
            events.connected().await;
            streams.push(events);
        }
    }
    crate::util::eventually("six HTTP/3 streams open", || {
        server.state.streams.open_streams().http3 == 6
    })
    .await;
    server.stop_promptly().await;
    assert_eq!(server.state.streams.open_streams().total(), 0);
    // Each stream's last frame (its reconnect delay, spread by --drain-spread) arrives before
    // the stream ends: closing the connection must not discard it.
    for events in &mut streams {
        let mut told_to_reconnect = false;
        while !events.ended {
            if let Ok(Some(event)) = events.next_within(PATIENCE).await {
                told_to_reconnect |= event.event == "shutdown";
            }
        }
        assert!(
            told_to_reconnect,
            "a stream ended without its shutdown frame"
        );
    }
    crate::util::eventually("both QUIC connections closed", || {
        clients.iter().all(|client| client.is_closed())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alt_svc_is_on_the_https_listener_only_and_off_with_no_alt_svc() {
    let server = TestServer::start(&[]).await;
    let expected = format!("h3=\":{}\"; ma=86400", server.h3.port());
    let https = server.client(Via::H2Tls).await.get("/proto").await;
    assert_eq!(header(https.headers(), "alt-svc"), expected);
    for via in [Via::H1Tls, Via::H1, Via::H3] {
        let answer = server.client(via).await.get("/proto").await;
        assert_eq!(header(answer.headers(), "alt-svc"), "", "{via:?}");
    }

    let quiet = TestServer::start(&["--no-alt-svc"]).await;
    let https = quiet.client(Via::H2Tls).await.get("/proto").await;
    assert_eq!(https.status(), StatusCode::OK);
    assert_eq!(header(https.headers(), "alt-svc"), "");
}
