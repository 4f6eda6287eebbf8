//! What sessions and orders mean across nodes sharing one real `redis-server`: a post on one
//! node reaches the session on another, the same id replaces or is refused cluster-wide,
//! deleting and broadcasting reach every node, and an order is followed and read anywhere.

use crate::util::redis_server::{RedisServer, node};
use crate::util::{Events, Via, accepted, assert_one_line, eventually_async, ids};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn sessions_across_nodes_post_replace_and_delete() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let subscriber = a.client(Via::H2Tls).await;
    let (mut events, connected) = subscriber.subscribe("/sse/sessions/alice", None).await;
    // The numbering starts where Redis's clock was; the n-th post is `base + n`.
    let base: u64 = connected["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    let on_b = b.client(Via::H2c).await;
    let answer = on_b
        .post("/api/sessions/alice/events", "text/plain", "hello from b")
        .await;
    assert_eq!(accepted(answer).await["id"], base + 1);
    let got = events.next().await.expect("the post");
    assert_eq!(
        (got.id, got.data.as_str()),
        ((base + 1).to_string(), "hello from b")
    );

    let answer = on_b
        .post("/api/sessions/nobody/events", "text/plain", "x")
        .await;
    assert_one_line(answer, StatusCode::NOT_FOUND, "no session \"nobody\"").await;

    // The same id subscribed on B: A's stream is replaced, and posts go to B's.
    let newer = b.client(Via::H1).await;
    let held = (base + 1).to_string();
    let (mut on_b_events, _) = newer.subscribe("/sse/sessions/alice", Some(&held)).await;
    let replaced = events.next().await.expect("replaced");
    assert_eq!(replaced.event, "replaced");
    assert_eq!(events.next().await, None, "A's stream ends");
    let on_a = a.client(Via::H2c).await;
    let answer = on_a
        .post(
            "/api/sessions/alice/events",
            "text/plain",
            "to the newer one",
        )
        .await;
    assert_eq!(accepted(answer).await["id"], base + 2);
    let got = on_b_events.next().await.expect("the post");
    assert_eq!(
        (got.id, got.data.as_str()),
        ((base + 2).to_string(), "to the newer one")
    );

    // Deleted on A while its stream is on B: B's stream gets bye, and a reconnect with
    // Last-Event-ID to either node gets 204; a new start (no Last-Event-ID) may use it again.
    assert_eq!(
        on_a.delete("/api/sessions/alice").await.status(),
        StatusCode::OK
    );
    assert_eq!(on_b_events.next().await.expect("bye").event, "bye");
    assert_eq!(on_b_events.next().await, None);
    for server in [&a, &b] {
        let client = server.client(Via::H2c).await;
        let answer = client
            .get_with(
                "/sse/sessions/alice",
                &[("last-event-id", &(base + 2).to_string())],
            )
            .await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }
    let answer = on_a
        .post("/api/sessions/alice/events", "text/plain", "x")
        .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    let again = b.client(Via::H2c).await;
    let (_events, connected) = again.subscribe("/sse/sessions/alice", None).await;
    let restarted: u64 = connected["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    assert!(
        restarted > base + 2,
        "a new start, above the old ids: {connected}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_id_reject_holds_across_nodes_until_the_holder_leaves() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let reject = ["--same-id", "reject"];
    let (a, b) = (node(&redis, &reject).await, node(&redis, &reject).await);
    let holder = a.client(Via::H2Tls).await;
    let (mut held, _) = holder.subscribe("/sse/sessions/carol", None).await;

    let on_b = b.client(Via::H2c).await;
    let answer = on_b.get("/sse/sessions/carol").await;
    assert_one_line(
        answer,
        StatusCode::CONFLICT,
        "this session id is already connected",
    )
    .await;
    let post = on_b
        .post("/api/sessions/carol/events", "text/plain", "still A's")
        .await;
    let id = accepted(post).await["id"].as_u64().expect("id");
    let got = held.next().await.expect("the post");
    assert_eq!((got.id, got.data.as_str()), (id.to_string(), "still A's"));

    // A's subscriber leaves: A lets go of the claim, and B may take the session.
    drop((held, holder));
    let mut taken = None;
    eventually_async("B may subscribe once A's stream is gone", async || {
        let answer = on_b.get("/sse/sessions/carol").await;
        let ok = answer.status() == StatusCode::OK;
        if ok {
            taken = Some(Events::new(answer));
        }
        ok
    })
    .await;
    let mut on_b_events = taken.expect("subscribed on B");
    assert_eq!(on_b_events.connected().await["session"], "carol");
    let answer = a.client(Via::H1).await.get("/sse/sessions/carol").await;
    assert_eq!(answer.status(), StatusCode::CONFLICT, "now B holds it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_on_one_node_reaches_sessions_on_every_node() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let (on_a, on_b) = (a.client(Via::H2c).await, b.client(Via::H2c).await);
    let (mut first, on_first) = on_a.subscribe("/sse/sessions/s1", None).await;
    let (mut second, on_second) = on_b.subscribe("/sse/sessions/s2", None).await;
    let poster = a.client(Via::H1).await;
    let answer = poster
        .post("/api/broadcast", "text/plain", "to everyone")
        .await;
    assert_eq!(accepted(answer).await["sessions"], 2);
    for (events, connected) in [(&mut first, on_first), (&mut second, on_second)] {
        let got = events.next().await.expect("the broadcast");
        assert_eq!(got.data, "to everyone");
        // The first event of each session's own numbering.
        let start: u64 = connected["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("id");
        assert_eq!(got.id, (start + 1).to_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_created_on_a_is_followed_and_read_on_b() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let (on_a, on_b) = (a.client(Via::H2c).await, b.client(Via::H2c).await);
    let id =
        crate::util::create_order(&on_a, serde_json::json!({"steps": 3, "interval_ms": 200})).await;
    let other =
        crate::util::create_order(&on_b, serde_json::json!({"steps": 1, "interval_ms": 10})).await;
    assert_ne!(id, other, "ids made on two nodes never collide");

    // Followed on B from the start: every step, the end, then the stream ends.
    let follower = b.client(Via::H2Tls).await;
    let (mut events, connected) = follower.subscribe(&format!("/sse/orders/{id}"), None).await;
    let base: u64 = connected["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    let got = events.take(5).await;
    assert_eq!(ids(&got), (base + 1..=base + 5).collect::<Vec<_>>());
    let names: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["progress", "progress", "progress", "progress", "done"]
    );
    assert_eq!(events.next().await, None, "the stream ends after done");

    let detail = crate::util::json(on_b.get(&format!("/api/orders/{id}")).await).await;
    assert_eq!(
        (detail["status"].as_str(), detail["progress"].as_u64()),
        (Some("done"), Some(100))
    );

    // After the end, on B: a new page gets the final state; a resume what it lacks; a
    // reconnect that has it all, 204.
    let late = b.client(Via::H2c).await;
    let (mut events, _) = late.subscribe(&format!("/sse/orders/{id}"), None).await;
    let last = events.next().await.expect("the final state");
    assert_eq!(
        (last.id, last.event.as_str()),
        ((base + 5).to_string(), "done")
    );
    assert_eq!(events.next().await, None);
    let (mut events, _) = late
        .subscribe(&format!("/sse/orders/{id}"), Some(&(base + 3).to_string()))
        .await;
    assert_eq!(ids(&events.take(2).await), vec![base + 4, base + 5]);
    assert_eq!(events.next().await, None);
    let held_all = (base + 5).to_string();
    let answer = late
        .get_with(
            &format!("/sse/orders/{id}"),
            &[("last-event-id", &held_all)],
        )
        .await;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let answer = late.get("/sse/orders/o-nobody-1").await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}
