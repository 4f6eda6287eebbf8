//! The session hub and topics over real HTTP/1.1 and HTTP/2: delivery by id, replay after
//! Last-Event-ID, resets, slow subscribers, same-id policies, deletion and the error answers.

use crate::util::{PATIENCE, TestServer, Via, assert_one_line, ids};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn send_to_id_over_http1_and_http2() {
    let server = TestServer::start(&[]).await;
    let poster = server.client(Via::H2c).await;
    for (via, id, protocol) in [
        (Via::H1, "h1-user", "HTTP/1.1"),
        (Via::H2Tls, "h2-user", "HTTP/2"),
    ] {
        let subscriber = server.client(via).await;
        let (mut events, connected) = subscriber
            .subscribe(&format!("/sse/sessions/{id}"), None)
            .await;
        let retry = connected["retry"].as_u64().expect("retry:");
        assert!((5000..=6000).contains(&retry), "5 s plus jitter: {retry}");
        assert_eq!(connected["id"], "0", "the cursor: nothing delivered yet");
        assert_eq!(connected["session"], id);
        assert_eq!(connected["protocol"], protocol);
        assert!(connected["connection_id"].as_u64().expect("connection id") > 0);

        let path = format!("/api/sessions/{id}/events");
        let answer = poster.post(&path, "text/plain", "line one\nline two").await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert_eq!(
            crate::util::json(answer).await,
            json!({"id": 1, "delivered": true})
        );
        let answer = poster
            .post_json(&path, json!({"event": "chat", "data": {"n": 2}}))
            .await;
        assert_eq!(
            crate::util::json(answer).await,
            json!({"id": 2, "delivered": true})
        );

        let got = events.take(2).await;
        assert_eq!(
            (got[0].id.as_str(), got[0].data.as_str()),
            ("1", "line one\nline two")
        );
        assert_eq!(
            (got[1].event.as_str(), got[1].data.as_str()),
            ("chat", r#"{"n":2}"#)
        );
        let info = crate::util::json(poster.get(&format!("/api/sessions/{id}")).await).await;
        assert_eq!(info["connected"], true);
        assert_eq!(info["protocol"], protocol);
        assert_eq!(info["last_event_id"], 2);
    }
    let list = crate::util::json(poster.get("/api/sessions").await).await;
    assert_eq!(list["total"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_with_1000_subscribers_on_10_http2_connections_receives_every_event() {
    let server = TestServer::start(&[]).await;
    let mut readers = tokio::task::JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(1000);
    for _ in 0..10 {
        let client = server.client(Via::H2Tls).await;
        for _ in 0..100 {
            let client = client.clone();
            let ready = ready_tx.clone();
            readers.spawn(async move {
                let (mut events, _) = client.subscribe("/sse/topics/news", None).await;
                ready.send(()).await.expect("ready");
                ids(&events.take(20).await)
            });
        }
    }
    for _ in 0..1000 {
        tokio::time::timeout(PATIENCE, ready_rx.recv())
            .await
            .expect("subscribed in time");
    }
    let poster = server.client(Via::H1).await;
    for n in 1..=20 {
        let answer = crate::util::json(
            poster
                .post("/api/topics/news/events", "text/plain", format!("n{n}"))
                .await,
        )
        .await;
        assert_eq!(answer, json!({"id": n, "subscribers": 1000}));
    }
    let expected: Vec<u64> = (1..=20).collect();
    let mut finished = 0;
    while let Some(got) = tokio::time::timeout(PATIENCE, readers.join_next())
        .await
        .expect("in time")
    {
        assert_eq!(got.expect("reader"), expected);
        finished += 1;
    }
    assert_eq!(finished, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_reaches_100_sessions_multiplexed_on_one_http2_connection() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2c).await;
    let mut sessions = Vec::new();
    for n in 0..100 {
        sessions.push(
            client
                .subscribe(&format!("/sse/sessions/b{n}"), None)
                .await
                .0,
        );
    }
    // 100 streams fill the connection's default SETTINGS_MAX_CONCURRENT_STREAMS: post on another.
    let poster = server.client(Via::H1).await;
    let answer = poster
        .post("/api/broadcast", "text/plain", "to everyone")
        .await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(crate::util::json(answer).await, json!({"sessions": 100}));
    for events in &mut sessions {
        let event = events.next().await.expect("the broadcast");
        assert_eq!(
            (event.id.as_str(), event.data.as_str()),
            ("1", "to everyone")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_with_last_event_id_gets_exactly_the_50_missed_events() {
    let server = TestServer::start(&[]).await;
    let poster = server.client(Via::H2c).await;
    let subscriber = server.client(Via::H1).await;
    let (mut events, _) = subscriber.subscribe("/sse/sessions/k", None).await;
    for n in 1..=5 {
        crate::util::accepted(
            poster
                .post("/api/sessions/k/events", "text/plain", format!("e{n}"))
                .await,
        )
        .await;
    }
    let seen = events.take(5).await;
    let last = seen.last().expect("five").id.clone();
    drop(events);
    drop(subscriber); // the connection goes away mid-stream
    crate::util::eventually("the session shows as disconnected", || {
        server.state.hub.session("k").is_some_and(|s| !s.connected)
    })
    .await;

    for n in 6..=55 {
        let answer = crate::util::json(
            poster
                .post("/api/sessions/k/events", "text/plain", format!("e{n}"))
                .await,
        )
        .await;
        assert_eq!(answer, json!({"id": n, "delivered": false}));
    }
    let again = server.client(Via::H2Tls).await;
    let (mut events, connected) = again.subscribe("/sse/sessions/k", Some(&last)).await;
    assert_eq!(connected["id"], "5");
    assert_eq!(connected["last_event_id"], 5);
    assert_eq!(connected["replayed"], 50);
    let replayed = events.take(50).await;
    assert_eq!(ids(&replayed), (6..=55).collect::<Vec<_>>());
    assert_eq!(replayed[0].data, "e6");
    crate::util::accepted(
        poster
            .post("/api/sessions/k/events", "text/plain", "live")
            .await,
    )
    .await;
    assert_eq!(events.next().await.expect("live").id, "56");
    assert_eq!(server.state.hub.session("k").expect("info").reconnects, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_last_event_id_older_than_the_ring_gets_reset_then_what_is_held() {
    let server = TestServer::start(&["--replay", "10"]).await;
    let client = server.client(Via::H2c).await;
    let (events, connected) = client.subscribe("/sse/sessions/r", None).await;
    assert_eq!(connected["id"], "0");
    drop(events);
    crate::util::eventually("disconnected", || {
        server.state.hub.session("r").is_some_and(|s| !s.connected)
    })
    .await;
    for n in 1..=30 {
        crate::util::accepted(
            client
                .post("/api/sessions/r/events", "text/plain", n.to_string())
                .await,
        )
        .await;
    }
    let (mut events, _) = client.subscribe("/sse/sessions/r", Some("0")).await;
    let reset = events.next().await.expect("reset");
    assert_eq!(reset.event, "reset");
    let reset_data: serde_json::Value = serde_json::from_str(&reset.data).expect("json");
    assert_eq!(reset_data["first_available"], 21);
    assert_eq!(ids(&events.take(10).await), (21..=30).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_never_reads_is_cut_as_slow_while_a_fast_one_gets_everything() {
    let server = TestServer::start(&["--queue", "8"]).await;
    let fast_client = server.client(Via::H2Tls).await;
    let (mut fast, _) = fast_client.subscribe("/sse/topics/firehose", None).await;

    // The slow one asks over raw HTTP/1.1 and then never reads a byte.
    let mut slow = crate::util::plain(server.http).await;
    slow.write_all(b"GET /sse/topics/firehose HTTP/1.1\r\nHost: lab\r\n\r\n")
        .await
        .expect("request");
    crate::util::eventually("two subscribers", || {
        server
            .state
            .hub
            .topics()
            .first()
            .is_some_and(|t| t.subscribers == 2)
    })
    .await;

    // 200 events of 60 KiB: far more than the kernel buffers of a reader that never reads.
    // Each is posted once the fast subscriber has the one before, so it never falls behind.
    let poster = server.client(Via::H2c).await;
    let big = "x".repeat(60 * 1024);
    let mut fast_ids = Vec::new();
    for n in 1..=200 {
        let answer = poster
            .post(
                "/api/topics/firehose/events",
                "text/plain",
                format!("{n} {big}"),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        fast_ids.extend(ids(&fast.take(1).await));
    }
    assert_eq!(
        fast_ids,
        (1..=200).collect::<Vec<_>>(),
        "the fast subscriber misses nothing"
    );

    let topic = server.state.hub.topics().remove(0);
    assert_eq!(topic.subscribers, 1, "the slow subscriber was cut");
    assert!(topic.dropped >= 1);
    // Its connection was closed: reading now drains what was in flight, then ends (EOF or
    // reset, either way within the deadline; an open connection would time out here).
    let mut sink = Vec::new();
    let _eof_or_reset = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut sink))
        .await
        .expect("the server closed the slow subscriber's connection");
    assert!(
        sink.len() < 200 * 60 * 1024,
        "it never got everything: it was cut"
    );
    crate::util::eventually("only the fast stream is open", || {
        server.state.streams.open_streams().total() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_id_replaces_the_older_stream() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2c).await;
    let (mut older, _) = client.subscribe("/sse/sessions/twice", None).await;
    let (mut newer, _) = client.subscribe("/sse/sessions/twice", None).await;
    let replaced = older.next().await.expect("replaced event");
    assert_eq!(replaced.event, "replaced");
    assert!(older.next().await.is_none(), "the older stream ends");
    crate::util::accepted(
        client
            .post("/api/sessions/twice/events", "text/plain", "hi")
            .await,
    )
    .await;
    assert_eq!(newer.next().await.expect("to the newer").data, "hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_same_id_reject_the_newcomer_gets_409() {
    let server = TestServer::start(&["--same-id", "reject"]).await;
    let client = server.client(Via::H2c).await;
    let (_first, _) = client.subscribe("/sse/sessions/once", None).await;
    let second = client.get("/sse/sessions/once").await;
    assert_one_line(
        second,
        StatusCode::CONFLICT,
        "this session id is already connected",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_sends_bye_and_the_reconnect_gets_204() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2c).await;
    let (mut events, _) = client.subscribe("/sse/sessions/gone", None).await;
    crate::util::accepted(
        client
            .post("/api/sessions/gone/events", "text/plain", "before")
            .await,
    )
    .await;
    let deleted = client.delete("/api/sessions/gone").await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(events.next().await.expect("queued first").data, "before");
    assert_eq!(events.next().await.expect("bye").event, "bye");
    assert!(events.next().await.is_none(), "the stream closes");

    let reconnect = client
        .get_with("/sse/sessions/gone", &[("last-event-id", "1")])
        .await;
    assert_eq!(reconnect.status(), StatusCode::NO_CONTENT);
    assert_one_line(
        client.get("/api/sessions/gone").await,
        StatusCode::NOT_FOUND,
        "no session",
    )
    .await;
    let post = client
        .post("/api/sessions/gone/events", "text/plain", "late")
        .await;
    assert_one_line(post, StatusCode::NOT_FOUND, "no session").await;
    assert_one_line(
        client.delete("/api/sessions/gone").await,
        StatusCode::NOT_FOUND,
        "no session",
    )
    .await;
    // A new start (no Last-Event-ID) opens the id again.
    let (_events, connected) = client.subscribe("/sse/sessions/gone", None).await;
    assert_eq!(connected["id"], "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_one_line_answers() {
    let server = TestServer::start(&["--max-sessions", "2"]).await;
    let client = server.client(Via::H2c).await;
    let (_a, _) = client.subscribe("/sse/sessions/a", None).await;

    assert_one_line(
        client.get("/sse/sessions/not%20ok").await,
        StatusCode::BAD_REQUEST,
        "an id must be",
    )
    .await;
    assert_one_line(
        client
            .get(&format!("/sse/topics/{}", "x".repeat(129)))
            .await,
        StatusCode::BAD_REQUEST,
        "an id must be",
    )
    .await;
    let unknown = client
        .post("/api/sessions/nobody/events", "text/plain", "x")
        .await;
    assert_one_line(unknown, StatusCode::NOT_FOUND, "no session \"nobody\"").await;
    let huge = client
        .post(
            "/api/sessions/a/events",
            "text/plain",
            "x".repeat(70 * 1024),
        )
        .await;
    assert_one_line(
        huge,
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is over the 64 KiB limit",
    )
    .await;
    let malformed = client
        .post("/api/sessions/a/events", "application/json", "{oops")
        .await;
    assert_one_line(malformed, StatusCode::BAD_REQUEST, "malformed JSON body").await;
    for name in ["two\nlines", "with:colon"] {
        let answer = client
            .post_json(
                "/api/sessions/a/events",
                json!({"event": name, "data": "x"}),
            )
            .await;
        assert_one_line(
            answer,
            StatusCode::BAD_REQUEST,
            "an event name must not contain",
        )
        .await;
    }
    let no_data = client
        .post_json("/api/topics/t/events", json!({"event": "x"}))
        .await;
    assert_one_line(
        no_data,
        StatusCode::BAD_REQUEST,
        "the JSON body has no \"data\"",
    )
    .await;
    let media = client.post("/api/broadcast", "image/png", "x").await;
    assert_one_line(
        media,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Content-Type image/png",
    )
    .await;

    let (_b, _) = client.subscribe("/sse/sessions/b", None).await;
    let full = client.get("/sse/sessions/c").await;
    assert_eq!(crate::util::header(full.headers(), "retry-after"), "5");
    assert_one_line(
        full,
        StatusCode::SERVICE_UNAVAILABLE,
        "--max-sessions 2 reached",
    )
    .await;
    // Nothing accepted was lost along the way: the session still answers.
    assert_eq!(server.state.hub.session_count(), 2);
}
