//! Order progress, the seed's real use case: progress events, done or failed, 204 after,
//! resume without repeats, the final state for a page opened after the end, and the seed's
//! own URL.

use crate::util::{TestServer, Via, assert_one_line, create_order as create, ids};
use http::StatusCode;
use serde_json::json;

fn detail(event: &sselab::sse::parser::ParsedEvent) -> serde_json::Value {
    serde_json::from_str(&event.data).expect("order detail JSON")
}

/// `GET /api/orders/{id}`: the order's current detail.
async fn status(client: &crate::util::Client, id: &str) -> serde_json::Value {
    crate::util::json(client.get(&format!("/api/orders/{id}")).await).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_reports_each_step_then_done_then_answers_204() {
    each_step_then_done_then_204(Via::H2Tls).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_reports_each_step_then_done_then_answers_204_over_http3() {
    each_step_then_done_then_204(Via::H3).await;
}

async fn each_step_then_done_then_204(via: Via) {
    let server = TestServer::start(&[]).await;
    let client = server.client(via).await;
    let id = create(
        &client,
        json!({"title": "Book", "amount": 12.5, "steps": 3, "interval_ms": 300}),
    )
    .await;

    let (mut events, _) = client.subscribe(&format!("/sse/orders/{id}"), None).await;
    let mut got = Vec::new();
    while let Some(event) = events.next().await {
        got.push(event);
    }
    let names: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["progress", "progress", "progress", "progress", "done"]
    );
    let progress: Vec<u64> = got
        .iter()
        .map(|e| detail(e)["progress"].as_u64().expect("n"))
        .collect();
    assert_eq!(progress, [0, 33, 66, 100, 100]);
    let done = detail(got.last().expect("done"));
    assert_eq!(done["status"], "done");
    assert_eq!(done["title"], "Book");
    assert_eq!(done["amount"], 12.5);
    assert_eq!(done["expired"], false);
    assert_eq!(ids(&got), [1, 2, 3, 4, 5]);

    let again = client
        .get_with(&format!("/sse/orders/{id}"), &[("last-event-id", "5")])
        .await;
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "a finished order stops the browser"
    );
    assert_eq!(status(&client, &id).await["status"], "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_order_ends_with_failed_and_a_reason() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H1).await;
    let id = create(
        &client,
        json!({"steps": 4, "interval_ms": 200, "fail_at": 2}),
    )
    .await;
    let (mut events, _) = client.subscribe(&format!("/sse/orders/{id}"), None).await;
    let mut got = Vec::new();
    while let Some(event) = events.next().await {
        got.push(event);
    }
    let failed = got.last().expect("failed");
    assert_eq!(failed.event, "failed");
    assert_eq!(detail(failed)["reason"], "step 2 of 4 failed");
    assert_eq!(detail(failed)["progress"], 25);
    let poster = server.client(Via::H1).await;
    let again = poster
        .get_with(
            &format!("/sse/orders/{id}"),
            &[("last-event-id", &failed.id)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);

    let slow = create(
        &poster,
        json!({"steps": 3, "interval_ms": 300, "expire_after_ms": 450}),
    )
    .await;
    let (mut events, _) = poster.subscribe(&format!("/sse/orders/{slow}"), None).await;
    let mut last = None;
    while let Some(event) = events.next().await {
        last = Some(event);
    }
    let expired = detail(&last.expect("an end"));
    assert_eq!(
        (expired["status"].as_str(), expired["expired"].as_bool()),
        (Some("failed"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_mid_order_resumes_without_repeating_steps() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2c).await;
    let id = create(&client, json!({"steps": 6, "interval_ms": 300})).await;
    let (mut events, _) = client.subscribe(&format!("/sse/orders/{id}"), None).await;
    let first = events.take(2).await;
    assert_eq!(ids(&first), [1, 2]);
    drop(events);
    // Away while steps 2 and 3 (ids 3 and 4, progress 33 and 50) are published.
    crate::util::eventually_async("two steps published while away", async || {
        status(&client, &id).await["progress"].as_u64() >= Some(50)
    })
    .await;

    let (mut events, connected) = client
        .subscribe(&format!("/sse/orders/{id}"), Some("2"))
        .await;
    assert_eq!(connected["id"], "2");
    let said = connected;
    assert_eq!(said["last_event_id"], 2);
    let replayed = said["replayed"].as_u64().expect("replayed") as usize;
    assert!(
        replayed >= 2,
        "the steps missed while away are replayed: {said}"
    );
    let mut rest = Vec::new();
    while let Some(event) = events.next().await {
        rest.push(event);
    }
    assert_eq!(
        ids(&rest),
        [3, 4, 5, 6, 7, 8],
        "no step repeated, none missing"
    );
    assert_eq!(
        ids(&rest[..replayed]),
        (3..3 + replayed as u64).collect::<Vec<_>>(),
        "the replay starts right after the Last-Event-ID"
    );
    assert_eq!(rest.last().expect("done").event, "done");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_opened_after_the_order_finished_gets_the_final_state_then_204() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H2c).await;
    let id = create(&client, json!({"steps": 2, "interval_ms": 20})).await;
    crate::util::eventually_async("the order is done", async || {
        status(&client, &id).await["status"] == "done"
    })
    .await;

    // A first visit: no Last-Event-ID.
    let path = format!("/sse/orders/{id}");
    let (mut events, connected) = client.subscribe(&path, None).await;
    assert_eq!(connected["replayed"], 1, "{connected}");
    assert_eq!(
        connected["id"], "3",
        "a reconnect before the final event would still get it"
    );
    let done = events.next().await.expect("the final event");
    assert_eq!((done.event.as_str(), done.id.as_str()), ("done", "4"));
    assert_eq!(
        (
            detail(&done)["status"].as_str(),
            detail(&done)["progress"].as_u64()
        ),
        (Some("done"), Some(100))
    );
    assert_eq!(events.next().await, None, "then the stream ends");

    // The browser reconnects with the id it now holds, and stops.
    let again = client.get_with(&path, &[("last-event-id", &done.id)]).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_url_follows_an_order_and_unknown_orders_are_404() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H1).await;
    let id = create(&client, json!({"steps": 1, "interval_ms": 300})).await;
    let (mut events, _) = client
        .subscribe(&format!("/getOrderDetail?orderId={id}"), None)
        .await;
    let mut names = Vec::new();
    while let Some(event) = events.next().await {
        names.push(event.event);
    }
    assert_eq!(names, ["progress", "progress", "done"]);

    let other = server.client(Via::H1).await;
    assert_one_line(
        other.get("/sse/orders/o-999").await,
        StatusCode::NOT_FOUND,
        "no order \"o-999\"",
    )
    .await;
    assert_one_line(
        other.get("/getOrderDetail?orderId=nope").await,
        StatusCode::NOT_FOUND,
        "no order",
    )
    .await;
    assert_one_line(
        other.get("/getOrderDetail").await,
        StatusCode::BAD_REQUEST,
        "missing ?orderId=",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_orders_are_refused_and_the_running_cap_holds() {
    let server = TestServer::start(&["--max-orders", "1"]).await;
    let client = server.client(Via::H2c).await;
    for (body, start) in [
        (json!({"steps": 0}), "steps must be from 1 to 100"),
        (
            json!({"steps": 3, "fail_at": 9}),
            "fail_at must be a step from 1 to 3",
        ),
        (json!({"interval_ms": 0}), "interval_ms must be from 1"),
        (
            json!({"amount": -1}),
            "amount must be a number of 0 or more",
        ),
        (json!({"colour": "red"}), "malformed order JSON"),
        // serde would read an array as the fields in order (steps, interval_ms, …).
        (json!([3, 100]), "the order must be a JSON object"),
    ] {
        assert_one_line(
            client.post_json("/api/orders", body).await,
            StatusCode::BAD_REQUEST,
            start,
        )
        .await;
    }
    let malformed = client.post("/api/orders", "application/json", "{").await;
    assert_one_line(malformed, StatusCode::BAD_REQUEST, "malformed order JSON").await;

    // An empty body is an order with the seed's defaults (5 steps, 5 s apart).
    let answer = client.post("/api/orders", "application/json", "").await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let full = client.post_json("/api/orders", json!({})).await;
    assert_eq!(crate::util::header(full.headers(), "retry-after"), "5");
    assert_one_line(full, StatusCode::SERVICE_UNAVAILABLE, "--max-orders 1").await;
}
