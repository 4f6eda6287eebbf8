//! Several sselab nodes sharing one real `redis-server` (`--redis`): the same ids in the same
//! order on every node, a reconnect to another node replays exactly what was missed, Redis
//! going away is visible (503, degraded) and never loses or repeats an event, and the bench
//! splits its streams over two nodes.

use crate::util::redis_server::{
    RedisServer, marker_comes_next, node, publish, until_health, untrusted_ca_is_refused,
};
use crate::util::{Via, assert_one_line, bench, ids};
use http::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn publish_on_b_reaches_a_and_b_with_the_same_ids_over_http1_and_http2() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let mut streams = Vec::new();
    for (server, via) in [
        (&a, Via::H1),
        (&a, Via::H2Tls),
        (&b, Via::H1Tls),
        (&b, Via::H2c),
    ] {
        let client = server.client(via).await;
        let (events, _) = client.subscribe("/sse/topics/prices", None).await;
        streams.push((client, events));
    }
    let (on_a, on_b) = (a.client(Via::H2c).await, b.client(Via::H1).await);
    // Redis starts the numbering at its clock: what matters is one sequence, no holes.
    let mut given = Vec::new();
    for n in 1..=20u64 {
        // Mostly on B, every fifth on A: one numbering either way.
        let poster = if n % 5 == 0 { &on_a } else { &on_b };
        given.push(publish(poster, "prices", &format!("p{n}")).await);
    }
    let first = given[0];
    assert_eq!(given, (first..first + 20).collect::<Vec<_>>());
    for (_, events) in &mut streams {
        let got = events.take(20).await;
        assert_eq!(ids(&got), given);
        let data: Vec<&str> = got.iter().map(|e| e.data.as_str()).collect();
        let sent: Vec<String> = (1..=20).map(|n| format!("p{n}")).collect();
        assert_eq!(data, sent);
    }
    marker_comes_next(
        streams.iter_mut().map(|(_, events)| events),
        &on_b,
        "prices",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rediss_with_its_own_ca_works_and_refuses_an_untrusted_certificate() {
    let Some(redis) = RedisServer::start_tls().await else {
        return;
    };
    let ca = redis.tls.as_ref().expect("TLS").ca.display().to_string();
    let (a, b) = (
        node(&redis, &["--redis-ca", &ca]).await,
        node(&redis, &["--redis-ca", &ca]).await,
    );
    let subscriber = a.client(Via::H2c).await;
    let (mut events, _) = subscriber.subscribe("/sse/topics/tls", None).await;
    let on_b = b.client(Via::H2c).await;
    let id = publish(&on_b, "tls", "over rediss").await;
    let got = events.next().await.expect("delivered");
    assert_eq!((got.id, got.data.as_str()), (id.to_string(), "over rediss"));

    untrusted_ca_is_refused(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_to_another_node_gets_exactly_what_it_missed_then_live() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let ring = ["--replay", "100"];
    let (a, b, c) = (
        node(&redis, &ring).await,
        node(&redis, &ring).await,
        node(&redis, &ring).await,
    );
    let on_b = b.client(Via::H2c).await;
    let subscriber = a.client(Via::H2Tls).await;
    let (mut events, connected) = subscriber.subscribe("/sse/topics/feed", None).await;
    // The numbering starts where Redis's clock was; event n is `base + n`.
    let base: u64 = connected["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    for n in 1..=5 {
        assert_eq!(publish(&on_b, "feed", &format!("e{n}")).await, base + n);
    }
    assert_eq!(
        ids(&events.take(5).await),
        (base + 1..=base + 5).collect::<Vec<_>>()
    );
    drop((events, subscriber));

    for n in 6..=55 {
        publish(&on_b, "feed", &format!("e{n}")).await;
    }
    let on_c = c.client(Via::H1).await;
    let held_5 = (base + 5).to_string();
    let (mut events, connected) = on_c.subscribe("/sse/topics/feed", Some(&held_5)).await;
    assert_eq!(connected["replayed"], 50);
    let missed = events.take(50).await;
    assert_eq!(ids(&missed), (base + 6..=base + 55).collect::<Vec<_>>());
    assert_eq!(missed[0].data, "e6");
    let on_a = a.client(Via::H2c).await;
    assert_eq!(publish(&on_a, "feed", "live").await, base + 56);
    let live = events.next().await.expect("the live event");
    assert_eq!(live.id, (base + 56).to_string());
    assert_eq!(live.data, "live");
    marker_comes_next([&mut events], &on_a, "feed").await;

    // Far beyond the ring: an explicit reset, then what the ring still holds. (The marker
    // was event 57.)
    for n in 58..=400 {
        publish(&on_b, "feed", &format!("e{n}")).await;
    }
    drop(events);
    let again = c.client(Via::H2c).await;
    let held_56 = (base + 56).to_string();
    let (mut events, _) = again.subscribe("/sse/topics/feed", Some(&held_56)).await;
    let reset = events.next().await.expect("reset");
    assert_eq!(reset.event, "reset");
    let told: serde_json::Value = serde_json::from_str(&reset.data).expect("JSON");
    let first = told["first_available"].as_u64().expect("first_available");
    assert!(
        first > base + 57 && first <= base + 301,
        "the ring holds about 100: {told}"
    );
    assert_eq!(told["last"], base + 400);
    let held = events.take((base + 400 - first + 1) as usize).await;
    assert_eq!(ids(&held), (first..=base + 400).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_refuses_publishes_keeps_streams_and_a_restart_without_data_resets() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let subscriber = a.client(Via::H2Tls).await;
    let (mut events, _) = subscriber.subscribe("/sse/topics/news", None).await;
    let on_b = b.client(Via::H2c).await;
    let mut given = Vec::new();
    for n in 1..=3 {
        given.push(publish(&on_b, "news", &format!("n{n}")).await);
    }
    assert_eq!(ids(&events.take(3).await), given);

    redis.stop().await;
    until_health(&a, "degraded").await;
    let answer = on_b
        .post("/api/topics/news/events", "text/plain", "lost?")
        .await;
    assert_eq!(crate::util::header(answer.headers(), "retry-after"), "2");
    assert_one_line(
        answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "redis is unavailable",
    )
    .await;

    // Back, but empty (no persistence): the ids start over, and the subscriber is told. The
    // reset is the next event it gets: the refused publish never reached it.
    redis.start_again().await;
    until_health(&a, "ok").await;
    until_health(&b, "ok").await;
    let after = publish(&on_b, "news", "after").await;
    assert!(
        after > given[2] + 1,
        "the new numbering starts above the old: {after}"
    );
    let reset = events.next().await.expect("reset");
    assert_eq!(reset.event, "reset");
    let told: serde_json::Value = serde_json::from_str(&reset.data).expect("JSON");
    assert_eq!(told["first_available"], after, "{told}");
    let next = events.next().await.expect("the new first event");
    assert_eq!((next.id, next.data.as_str()), (after.to_string(), "after"));
    let status = a.state.hub.redis_status().expect("on redis");
    assert!(status.reconnects >= 1 && status.connected, "{status:?}");
    // The same in /metrics: A's link came back, B refused what Redis could not take.
    let metric = |text: &str, name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name)).expect(name);
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a count")
    };
    let on_a = a.client(Via::H2c).await;
    let metrics_a = crate::util::text(on_a.get("/metrics").await).await;
    assert_eq!(metric(&metrics_a, "sselab_redis_connected"), 1);
    assert!(metric(&metrics_a, "sselab_redis_reconnects_total") >= 1);
    assert!(metric(&metrics_a, "sselab_redis_link_failures_total") >= 1);
    let metrics_b = crate::util::text(on_b.get("/metrics").await).await;
    assert!(metric(&metrics_b, "sselab_redis_failures_total") >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_id_brought_to_a_fresh_node_after_redis_lost_its_data_gets_reset() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let ring = ["--replay", "100"];
    let (a, b) = (node(&redis, &ring).await, node(&redis, &ring).await);
    let subscriber = a.client(Via::H2c).await;
    let (mut events, _) = subscriber.subscribe("/sse/topics/ledger", None).await;
    let on_b = b.client(Via::H2c).await;
    let mut old = 0;
    for n in 1..=50 {
        old = publish(&on_b, "ledger", &format!("old {n}")).await;
    }
    assert_eq!(ids(&events.take(50).await).last(), Some(&old));
    drop((events, subscriber));

    // Redis comes back empty, and the channel's new numbering runs on past what the
    // client holds, by more events than it held.
    redis.stop().await;
    redis.start_again().await;
    until_health(&b, "ok").await;
    let mut new = Vec::new();
    for n in 1..=80 {
        new.push(publish(&on_b, "ledger", &format!("new {n}")).await);
    }

    // A node that never saw the old numbering: the client's id is told apart anyway.
    let c = node(&redis, &ring).await;
    let on_c = c.client(Via::H1).await;
    let held = old.to_string();
    let (mut events, _) = on_c.subscribe("/sse/topics/ledger", Some(&held)).await;
    let reset = events.next().await.expect("reset");
    assert_eq!(reset.event, "reset", "not a silent gap: {reset:?}");
    let told: serde_json::Value = serde_json::from_str(&reset.data).expect("JSON");
    assert_eq!(
        (told["after"].as_u64(), told["first_available"].as_u64()),
        (Some(old), Some(new[0])),
        "{told}"
    );
    let got = events.take(80).await;
    assert_eq!(ids(&got), new);
    assert_eq!(got[0].data, "new 1");
    let live = publish(&on_b, "ledger", "live").await;
    let next = events.next().await.expect("the live event");
    assert_eq!((next.id, next.data.as_str()), (live.to_string(), "live"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_stops_answering_without_closing_shows_degraded_then_recovers() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let subscriber = a.client(Via::H2c).await;
    let (mut events, _) = subscriber.subscribe("/sse/topics/paused", None).await;
    // Redis holds every client for 6 s with the connections open, as behind a partition:
    // only the link's heartbeat can notice.
    let paused: String = redis.command(&["CLIENT", "PAUSE", "6000", "ALL"]).await;
    assert_eq!(paused, "OK");
    until_health(&a, "degraded").await;
    until_health(&a, "ok").await;
    until_health(&b, "ok").await;
    let on_b = b.client(Via::H2c).await;
    let id = publish(&on_b, "paused", "after").await;
    let got = events.next().await.expect("delivery resumed");
    assert_eq!((got.id, got.data.as_str()), (id.to_string(), "after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_pubsub_connection_catches_up_from_the_stream_exactly_once() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let ring = ["--replay", "50"];
    let (a, b) = (node(&redis, &ring).await, node(&redis, &ring).await);
    let on_b = b.client(Via::H2c).await;
    // A topic whose ring moved on long before A's subscriber came, and that sends it
    // nothing before the cut: what the subscriber lacks is only what comes after.
    let mut quiet_last = 0;
    for n in 1..=200 {
        quiet_last = publish(&on_b, "quiet", &n.to_string()).await;
    }
    let subscriber = a.client(Via::H1).await;
    let (mut events, connected) = subscriber.subscribe("/sse/topics/ticks", None).await;
    let base: u64 = connected["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    let other = a.client(Via::H2c).await;
    let (mut quiet_events, connected) = other.subscribe("/sse/topics/quiet", None).await;
    assert_eq!(connected["id"], quiet_last.to_string());
    for n in 1..=10 {
        publish(&on_b, "ticks", &n.to_string()).await;
    }
    assert_eq!(
        ids(&events.take(10).await),
        (base + 1..=base + 10).collect::<Vec<_>>()
    );
    // Every node's pub/sub connection is cut; publishing goes on meanwhile.
    let killed: i64 = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert!(killed >= 1, "A's link (subscribed) was cut: {killed}");
    for n in 11..=40 {
        publish(&on_b, "ticks", &n.to_string()).await;
    }
    publish(&on_b, "quiet", "201").await;
    let got = events.take(30).await;
    assert_eq!(ids(&got), (base + 11..=base + 40).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.event != "reset"));
    marker_comes_next([&mut events], &on_b, "ticks").await;
    let got = quiet_events
        .next()
        .await
        .expect("the one event after the cut");
    assert_eq!(
        (got.id, got.data.as_str()),
        ((quiet_last + 1).to_string(), "201")
    );
    marker_comes_next([&mut quiet_events], &on_b, "quiet").await;
    let status = a.state.hub.redis_status().expect("on redis");
    assert!(status.reconnects >= 1, "A's link came back: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_with_streams_split_over_two_nodes_loses_and_repeats_nothing() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (node(&redis, &[]).await, node(&redis, &[]).await);
    let (on_a, on_b) = (
        format!("http://127.0.0.1:{}", a.http.port()),
        format!("http://127.0.0.1:{}", b.http.port()),
    );
    let args = bench::load(&[
        "--url",
        &format!("{on_a}/sse/topics/bench"),
        "--also-url",
        &format!("{on_b}/sse/topics/bench"),
        "--proto",
        "h2c",
        "--connections",
        "2",
        "--streams",
        "100",
        "--duration",
        "2",
        "--rate",
        "20",
        "--publish-url",
        &format!("{on_a}/api/topics/bench/events"),
    ]);
    let report = sselab::bench::load::run(args).await.expect("bench runs");
    let publish = report.publish.as_ref().expect("fan-out mode");
    assert_eq!(report.established, 100, "{}", report.text());
    assert!(
        publish.sent >= 20 && publish.failed == 0,
        "{}",
        report.text()
    );
    assert_eq!(
        (report.lost, report.duplicated),
        (0, 0),
        "{}",
        report.text()
    );
    assert_eq!(
        report.events_received,
        publish.sent * 100,
        "{}",
        report.text()
    );
    // Half the streams on each node: each wrote every event to its 50.
    for server in [&a, &b] {
        let topics =
            crate::util::json(server.client(Via::H2c).await.get("/api/topics").await).await;
        assert_eq!(topics["topics"][0]["sent"], publish.sent * 50, "{topics}");
    }
}
