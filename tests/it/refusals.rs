//! Issue 23's contract, over the network: a refusal a later try can pass is, for an
//! EventSource, a 200 stream that says when to come back; for every other client the 503 it
//! always was; final answers stay final.

use http::StatusCode;

use crate::util::{Events, TestServer, Via, header, metric_sample, text};

const EVENT_STREAM: (&str, &str) = ("accept", "text/event-stream");
const JSON: (&str, &str) = ("accept", "application/json");

/// Read a refusal stream whole: its one event, and that the body then ends.
async fn refusal(mut events: Events, reason: &str) -> serde_json::Value {
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        header(&events.headers, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(header(&events.headers, "x-sselab-refused"), reason);
    let event = events.next().await.expect("the refused event");
    assert_eq!(event.event, "refused");
    assert_eq!(event.id, "", "no id: the browser's Last-Event-ID stays");
    let data: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
    assert_eq!(data["status"], 503);
    assert_eq!(data["reason"], reason);
    assert_eq!(event.retry, data["retry_ms"].as_u64(), "retry: is retry_ms");
    assert!(events.next().await.is_none(), "then the answer ends");
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_stream_cap_an_event_source_gets_a_stream_to_come_back_from_on_every_protocol() {
    let server = TestServer::start(&["--max-streams", "1"]).await;
    let holder = server.client(Via::H1).await;
    let (_held, _) = holder.subscribe("/sse/hello", None).await;

    for via in [Via::H1, Via::H2Tls, Via::H3] {
        let client = server.client(via).await;
        let refused = refusal(
            Events::new(client.get_with("/sse/hello", &[EVENT_STREAM]).await),
            "max_streams",
        )
        .await;
        let retry = refused["retry_ms"].as_u64().expect("retry_ms");
        assert!(
            (5000..=6000).contains(&retry),
            "Retry-After 5 s with the default 20 % jitter, got {retry} ({via:?})"
        );
        assert!(
            refused["message"]
                .as_str()
                .expect("message")
                .contains("--max-streams 1")
        );

        let status = client.get_with("/sse/hello", &[JSON]).await;
        assert_eq!(status.status(), StatusCode::SERVICE_UNAVAILABLE, "{via:?}");
        assert_eq!(header(status.headers(), "retry-after"), "5");
        let asked = client
            .get_with("/sse/hello?refusals=status", &[EVENT_STREAM])
            .await;
        assert_eq!(asked.status(), StatusCode::SERVICE_UNAVAILABLE, "{via:?}");
    }

    let observer = server.client(Via::H2Tls).await;
    let stats = crate::util::json(observer.get("/api/stats").await).await;
    assert_eq!(stats["refusals"]["max_streams"]["stream"], 3, "{stats}");
    assert_eq!(stats["refusals"]["max_streams"]["status"], 6, "{stats}");
    let metrics = text(observer.get("/metrics").await).await;
    for (answer, n) in [("stream", 3), ("status", 6)] {
        let name = format!(r#"sselab_refusals_total{{answer="{answer}",reason="max_streams"}}"#);
        assert_eq!(metric_sample(&metrics, &name), n, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn caps_refuse_as_streams_and_final_answers_stay_final() {
    let server = TestServer::start(&["--max-topics", "1"]).await;
    let client = server.client(Via::H2Tls).await;
    let (_first, _) = client.subscribe("/sse/topics/one", None).await;
    refusal(
        Events::new(client.get_with("/sse/topics/two", &[EVENT_STREAM]).await),
        "max_topics",
    )
    .await;

    // The lab's own cap: two of a group, the third refused until one ends.
    let path = "/sse/hello?slots=2&group=run-7";
    let (first, _) = client.subscribe(path, None).await;
    let (_second, _) = client.subscribe(path, None).await;
    let refused = refusal(
        Events::new(client.get_with(path, &[EVENT_STREAM]).await),
        "lab_slots",
    )
    .await;
    assert!((2000..=2400).contains(&refused["retry_ms"].as_u64().expect("retry_ms")));
    drop(first);
    let mut third = None;
    for _ in 0..100 {
        let events = Events::new(client.get_with(path, &[EVENT_STREAM]).await);
        if header(&events.headers, "x-sselab-refused").is_empty() {
            third = Some(events);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut third = third.expect("a slot frees when its stream ends");
    assert_eq!(third.connected().await["protocol"], "HTTP/2");

    for (path, status) in [
        ("/sse/sessions/not%20an%20id", StatusCode::BAD_REQUEST),
        ("/sse/hello?refusals=maybe", StatusCode::BAD_REQUEST),
        ("/sse/hello?slots=2", StatusCode::BAD_REQUEST),
        ("/sse/nothing-here", StatusCode::NOT_FOUND),
    ] {
        let response = client.get_with(path, &[EVENT_STREAM]).await;
        assert_eq!(response.status(), status, "{path}");
    }
}
