//! Many topics on one stream (`/sse/topics?topic=a&topic=b…`) over HTTP/1.1, HTTP/2 and
//! HTTP/3: every topic's events with their payloads unchanged, and a reconnect whose
//! Last-Event-ID resumes each topic exactly — in-process and on another node over Redis —
//! with one topic's `reset` when its ring moved on, and one-line 400s and 403s.

use std::collections::BTreeMap;

use crate::util::auth::{assert_refused, bearer, secured, token};
use crate::util::redis_server::{RedisServer, node, publish};
use crate::util::{Client, Events, TestServer, Via, assert_one_line};
use http::StatusCode;
use sselab::sse::parser::ParsedEvent;

fn stream_path(topics: &[String]) -> String {
    let query: Vec<String> = topics.iter().map(|t| format!("topic={t}")).collect();
    format!("/sse/topics?{}", query.join("&"))
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

/// (event type, data) of each event, sorted: no order is promised across topics.
fn sorted(events: &[ParsedEvent]) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.event.clone(), e.data.clone()))
        .collect();
    seen.sort();
    seen
}

fn expected(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
    pairs.sort();
    pairs
}

/// Nothing else is on its way: a marker published on `topic` now is the very next event.
async fn marker_comes_next(events: &mut Events, poster: &Client, topic: &str) {
    publish(poster, topic, "marker").await;
    let next = events.next().await.expect("the marker, the stream open");
    assert_eq!(
        (next.event.as_str(), next.data.as_str()),
        (format!("topic:{topic}").as_str(), "marker"),
        "the marker first"
    );
}

/// `connected`'s cursor per topic.
fn cursors(connected: &serde_json::Value) -> BTreeMap<String, u64> {
    let topics = connected["topics"].as_array().expect("topics in connected");
    topics
        .iter()
        .map(|t| {
            let name = t["topic"].as_str().expect("a name").to_string();
            (name, t["cursor"].as_u64().expect("a cursor"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_and_thirty_two_topics_on_one_stream_resume_exactly_over_http1_http2_and_http3() {
    let server = TestServer::start(&[]).await;
    let poster = server.client(Via::H2c).await;
    for (via, protocol) in [
        (Via::H1, "HTTP/1.1"),
        (Via::H2Tls, "HTTP/2"),
        (Via::H3, "HTTP/3"),
    ] {
        let tag = protocol.replace(['/', '.'], "");
        // Two topics: each event's type names its topic, payloads unchanged.
        let two = vec![format!("a{tag}"), format!("b{tag}")];
        // A client per stream: an HTTP/1.1 connection is closed with its stream.
        let client = server.client(via).await;
        let (mut events, connected) = client.subscribe(&stream_path(&two), None).await;
        assert_eq!(connected["protocol"], protocol);
        assert_eq!(cursors(&connected).len(), 2, "{connected}");
        publish(&poster, &two[0], "line one\nline two").await;
        let named = serde_json::json!({"event": "price", "data": {"p": 1}});
        let path = format!("/api/topics/{}/events", two[1]);
        crate::util::accepted(poster.post_json(&path, named).await).await;
        publish(&poster, "not-followed", "x").await;
        let got = events.take(2).await;
        assert_eq!(
            sorted(&got),
            expected([
                (
                    format!("topic:{}", two[0]),
                    "line one\nline two".to_string()
                ),
                (format!("topic:{}:price", two[1]), r#"{"p":1}"#.to_string()),
            ]),
            "{protocol}"
        );
        marker_comes_next(&mut events, &poster, &two[1]).await;
        drop(events);

        // Thirty-two topics: one event each, then a reconnect after events on every third.
        let many = names(&format!("t{tag}-"), 32);
        let client = server.client(via).await;
        let (mut events, _) = client.subscribe(&stream_path(&many), None).await;
        for topic in &many {
            publish(&poster, topic, &format!("{topic} first")).await;
        }
        let got = events.take(32).await;
        assert_eq!(
            sorted(&got),
            expected(
                many.iter()
                    .map(|t| (format!("topic:{t}"), format!("{t} first")))
            )
        );
        let last_id = got.last().expect("events").id.clone();
        drop(events);
        let missed: Vec<&String> = many.iter().step_by(3).collect();
        for topic in &missed {
            for n in 1..=2 {
                publish(&poster, topic, &format!("{topic} missed {n}")).await;
            }
        }
        let client = server.client(via).await;
        let (mut events, connected) = client.subscribe(&stream_path(&many), Some(&last_id)).await;
        assert_eq!(connected["last_event_id"], last_id.as_str());
        assert_eq!(connected["replayed"], missed.len() * 2);
        let got = events.take(missed.len() * 2).await;
        assert_eq!(
            sorted(&got),
            expected(missed.iter().flat_map(|t| {
                (1..=2).map(move |n| (format!("topic:{t}"), format!("{t} missed {n}")))
            })),
            "{protocol}: exactly the missed ones"
        );
        marker_comes_next(&mut events, &poster, &many[1]).await;
        eprintln!(
            "{protocol}: the id of a stream of 32 topics: {} characters",
            last_id.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ring_that_moved_resets_one_topic_and_bad_lists_and_ids_are_one_line_400s() {
    let server = TestServer::start(&["--replay", "3", "--max-topics-per-stream", "4"]).await;
    let poster = server.client(Via::H2c).await;
    let client = server.client(Via::H2Tls).await;
    let both = vec!["moved".to_string(), "kept".to_string()];
    let (events, connected) = client.subscribe(&stream_path(&both), None).await;
    let cursor = connected["id"].as_str().expect("an id").to_string();
    drop(events);
    let client = server.client(Via::H2Tls).await;
    for n in 1..=5 {
        publish(&poster, "moved", &format!("m{n}")).await;
    }
    publish(&poster, "kept", "k1").await;
    let (mut events, _) = client.subscribe(&stream_path(&both), Some(&cursor)).await;
    let got = events.take(5).await;
    let reset = got.iter().find(|e| e.event == "reset").expect("a reset");
    let said: serde_json::Value = serde_json::from_str(&reset.data).expect("JSON");
    assert_eq!(said["topic"], "moved", "{said}");
    let rest: Vec<&ParsedEvent> = got.iter().filter(|e| e.event != "reset").collect();
    let rest: Vec<(&str, &str)> = rest
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    for held in ["m3", "m4", "m5"] {
        assert!(rest.contains(&("topic:moved", held)), "{rest:?}");
    }
    assert!(rest.contains(&("topic:kept", "k1")), "{rest:?}");

    for (path, headers, start) in [
        ("/sse/topics", vec![], "name the topics to follow"),
        (
            "/sse/topics?topic=a&topic=a",
            vec![],
            "topic \"a\" is listed twice",
        ),
        ("/sse/topics?topic=a%20b", vec![], "topic: an id must be"),
        (
            "/sse/topics?topic=a&topic=b&topic=c&topic=d&topic=e",
            vec![],
            "at most 4 topics per stream (--max-topics-per-stream), got 5",
        ),
        (
            "/sse/topics?topic=a",
            vec![("last-event-id", "42")],
            "Last-Event-ID is not an id this stream gave",
        ),
        (
            "/sse/topics?topic=a&lastEventId=AQ",
            vec![],
            "lastEventId is not an id this stream gave",
        ),
    ] {
        let answer = client.get_with(path, &headers).await;
        assert_one_line(answer, StatusCode::BAD_REQUEST, start).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_topic_needs_its_subscribe_grant_and_the_403_names_the_first_refused() {
    let server = secured(&[]).await;
    let client = server.client(Via::H1).await;
    let only_a = token(&[], &["topics/a"], false);
    let path = "/sse/topics?topic=a&topic=b&topic=c";
    let answer = client
        .get_with(path, &[("authorization", &bearer(&only_a))])
        .await;
    assert_refused(
        answer,
        StatusCode::FORBIDDEN,
        "forbidden: to subscribe to topics/b",
        Some("insufficient_scope"),
    )
    .await;
    let all = token(&[], &["topics/*"], false);
    let answer = client
        .get_with(path, &[("authorization", &bearer(&all))])
        .await;
    let mut events = Events::new(answer);
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(cursors(&events.connected().await).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_to_another_node_resumes_every_topic_from_its_own_id() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let ring = ["--replay", "100"];
    let (a, b) = (node(&redis, &ring).await, node(&redis, &ring).await);
    let on_b = b.client(Via::H2c).await;
    let topics = names("feed-", 3);
    let (mut events, connected) = a
        .client(Via::H2Tls)
        .await
        .subscribe(&stream_path(&topics), None)
        .await;
    // Redis numbers each topic from its own clock reading: ids of about 1.8e15.
    assert!(
        cursors(&connected)
            .values()
            .all(|id| *id > 1_000_000_000_000_000)
    );
    for topic in &topics {
        publish(&on_b, topic, &format!("{topic} live")).await;
    }
    let got = events.take(3).await;
    let last_id = got.last().expect("events").id.clone();
    drop(events);
    publish(&on_b, &topics[0], "feed-0 missed").await;
    publish(&on_b, &topics[2], "feed-2 missed").await;
    let on_other = b.client(Via::H1).await;
    let (mut events, _) = on_other
        .subscribe(&stream_path(&topics), Some(&last_id))
        .await;
    let got = events.take(2).await;
    assert_eq!(
        sorted(&got),
        expected([
            ("topic:feed-0".to_string(), "feed-0 missed".to_string()),
            ("topic:feed-2".to_string(), "feed-2 missed".to_string()),
        ])
    );
    marker_comes_next(&mut events, &on_b, "feed-1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_origin_preflight_for_a_long_last_event_id_is_answered_and_counted() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2Tls).await;
    let path = stream_path(&names("feed-", 32));
    let request = client
        .request("OPTIONS", &path)
        .header("origin", "http://127.0.0.1:1")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .body(Default::default())
        .expect("request");
    let answer = client.send(request).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers();
    let allowed = |name: &str| crate::util::header(headers, name).to_ascii_lowercase();
    assert_eq!(allowed("access-control-allow-origin"), "*");
    assert!(allowed("access-control-allow-headers").contains("last-event-id"));
    assert!(allowed("access-control-allow-methods").contains("get"));
    assert_eq!(server.state.responses.preflights(), 1);
    let metrics = crate::util::text(client.get("/metrics").await).await;
    assert_eq!(
        crate::util::metric_sample(&metrics, "sselab_cors_preflights_total"),
        1
    );
    // ?timeout= is checked like the clocks'.
    let answer = client.get("/sse/topics?topic=a&timeout=soon").await;
    assert_one_line(
        answer,
        StatusCode::BAD_REQUEST,
        "timeout must be a whole number",
    )
    .await;
}
