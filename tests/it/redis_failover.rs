//! Redis failing under two sselab nodes, with real processes: Sentinel promoting a replica
//! after its master was killed (-9) mid-run, and one node cut off from Redis (a partition,
//! through a proxy) while the other is not. Every event answered 202 reaches the subscriber
//! exactly once, in order, and the node says it is degraded meanwhile; a publish that timed
//! out behind the partition says it may still go out, and does.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use http::StatusCode;
use sselab::sse::parser::ParsedEvent;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::util::proxy::Proxy;
use crate::util::redis_sentinel::RedisSentinel;
use crate::util::redis_server::{
    RedisServer, marker_comes_next, node, node_on, publish, until_health,
};
use crate::util::{Client, Events, TestServer, Via, ids, json, text};

const TOPICS: [&str; 3] = ["red", "green", "blue"];
/// One publish this often, on the topics in turn.
const PACE: Duration = Duration::from_millis(50);
/// Publishing before the master is killed.
const BEFORE_KILL: Duration = Duration::from_secs(3);
/// Publishes answered 202 after the failover before the run ends.
const AFTER_RECOVERY: usize = 20;
/// The bound: publishes succeed again this soon after the master was killed.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// How often `/healthz` is asked during the run.
const HEALTH_POLL: Duration = Duration::from_millis(50);
/// Each topic's last event: its reader then has everything.
const END: &str = "end";

/// One publish: its id when answered 202, the body when 503; anything else fails the test.
async fn try_publish(client: &Client, topic: &str, data: &str) -> Result<u64, String> {
    let path = format!("/api/topics/{topic}/events");
    let answer = client.post(&path, "text/plain", data.to_string()).await;
    match answer.status() {
        StatusCode::ACCEPTED => Ok(json(answer).await["id"].as_u64().expect("an id")),
        StatusCode::SERVICE_UNAVAILABLE => Err(text(answer).await),
        other => panic!("publish answered {other}: {}", text(answer).await),
    }
}

/// Every event before the topic's [`END`], in order.
async fn read_until_end(mut events: Events) -> Vec<ParsedEvent> {
    let mut got = Vec::new();
    loop {
        let event = events.next().await.expect("the stream stays open");
        if event.data == END {
            return got;
        }
        got.push(event);
    }
}

/// `/healthz`'s status each time it changed, asked until `stop`, once more after it.
fn watch_health(client: Client, stop: CancellationToken) -> JoinHandle<Vec<(Instant, String)>> {
    tokio::spawn(async move {
        let mut seen: Vec<(Instant, String)> = Vec::new();
        loop {
            let last_time = stop.is_cancelled();
            let health = json(client.get("/healthz").await).await;
            let status = health["status"].as_str().expect("a status").to_string();
            if seen.last().is_none_or(|(_, last)| *last != status) {
                seen.push((Instant::now(), status));
            }
            if last_time {
                return seen;
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    })
}

/// One publish (`topic`, `data`) and what it was answered.
struct Sent {
    topic: &'static str,
    data: String,
    answer: Result<u64, String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_failover_mid_run_delivers_every_acknowledged_event_once_in_order() {
    let Some(mut sentinel) = RedisSentinel::start().await else {
        return;
    };
    let url = sentinel.url();
    let args = ["--redis-min-replicas", "1"];
    let (a, b) = tokio::join!(node_on(&url, &args), node_on(&url, &args));
    let reader = a.client(Via::H2c).await;
    let mut readers = Vec::new();
    for topic in TOPICS {
        let (events, _) = reader
            .subscribe(&format!("/sse/topics/{topic}"), None)
            .await;
        readers.push(tokio::spawn(read_until_end(events)));
    }
    let stop = CancellationToken::new();
    let health = watch_health(a.client(Via::H2c).await, stop.clone());

    // Publish on B, the topics in turn; a 503 is retried (same topic) with a new payload.
    let poster = b.client(Via::H2c).await;
    let mut sent: Vec<Sent> = Vec::new();
    let mut acked = 0;
    let began = Instant::now();
    let mut killed: Option<Instant> = None;
    let mut recovered: Option<Duration> = None;
    let mut after_recovery = 0;
    while after_recovery < AFTER_RECOVERY {
        let topic = TOPICS[acked % TOPICS.len()];
        let data = format!("{topic} {}", sent.len());
        let answer = try_publish(&poster, topic, &data).await;
        if answer.is_ok() {
            acked += 1;
        }
        if let (Ok(_), Some(at)) = (&answer, killed) {
            recovered.get_or_insert(at.elapsed());
            after_recovery += 1;
        }
        sent.push(Sent {
            topic,
            data,
            answer,
        });
        match killed {
            None if began.elapsed() >= BEFORE_KILL => {
                sentinel.kill_master().await;
                killed = Some(Instant::now());
            }
            Some(at) => assert!(
                recovered.is_some() || at.elapsed() < RECOVERY_BOUND,
                "no publish succeeded within {RECOVERY_BOUND:?} of the kill"
            ),
            None => {}
        }
        tokio::time::sleep(PACE).await;
    }
    let killed = killed.expect("the master was killed");
    let recovered = recovered.expect("publishes succeeded again");
    assert!(
        recovered < RECOVERY_BOUND,
        "publishes succeeded again after {recovered:?}"
    );
    for topic in TOPICS {
        publish(&poster, topic, END).await;
    }
    until_health(&a, "ok").await;
    stop.cancel();
    let health = health.await.expect("the health poller");

    // A said degraded after the kill and ok again before the end.
    let timeline: Vec<String> = health
        .iter()
        .map(|(at, status)| match at.checked_duration_since(killed) {
            Some(after) => format!("{status} at kill+{:.2}s", after.as_secs_f64()),
            None => format!("{status} before the kill"),
        })
        .collect();
    assert!(
        health
            .iter()
            .any(|(at, status)| *at >= killed && status == "degraded"),
        "A degraded during the outage: {timeline:?}"
    );
    let last = health.last().map(|(_, status)| status.as_str());
    assert_eq!(last, Some("ok"), "A ok again: {timeline:?}");

    // Every 202 on A exactly once, with its id; ids strictly increasing; nothing else but
    // 503'd payloads (which may have been delivered: "it may still be delivered").
    let refused: HashSet<&str> = sent
        .iter()
        .filter(|s| s.answer.is_err())
        .map(|s| s.data.as_str())
        .collect();
    let mut refused_delivered = 0;
    let mut jump = 0;
    for (topic, reader) in TOPICS.iter().zip(readers) {
        let got = reader.await.expect("the reader");
        let resets: Vec<&ParsedEvent> = got.iter().filter(|e| e.event == "reset").collect();
        assert!(resets.is_empty(), "{topic}: no reset needed: {resets:?}");
        let got_ids = ids(&got);
        assert!(
            got_ids.windows(2).all(|w| w[0] < w[1]),
            "{topic}: ids strictly increasing: {got_ids:?}"
        );
        let mut seen = HashSet::new();
        for event in &got {
            assert!(
                seen.insert(event.data.as_str()),
                "{topic}: twice: {event:?}"
            );
            refused_delivered += usize::from(refused.contains(event.data.as_str()));
        }
        let topic_ids: Vec<u64> = sent
            .iter()
            .filter(|s| s.topic == *topic)
            .filter_map(|s| s.answer.clone().ok())
            .collect();
        jump = topic_ids
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(jump, u64::max);
        for one in sent.iter().filter(|s| s.topic == *topic) {
            if let Ok(id) = &one.answer {
                let event = got.iter().find(|e| e.data == one.data);
                let event = event.unwrap_or_else(|| panic!("{topic}: {:?} lost", one.data));
                assert_eq!(event.id, id.to_string(), "{:?}'s id", one.data);
            }
        }
        assert!(
            got.iter()
                .all(|e| sent.iter().any(|s| s.data == e.data && s.topic == *topic)),
            "{topic}: only what was published on it"
        );
    }
    // The 503s' bodies, numbers masked, with how many of each.
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for reason in sent.iter().filter_map(|s| s.answer.as_ref().err()) {
        let masked = reason.replace(|c: char| c.is_ascii_digit(), "#");
        *reasons.entry(masked.trim_end().to_string()).or_default() += 1;
    }
    eprintln!(
        "sentinel failover: {} published, {} answered 202 (all delivered once), {} answered 503 \
         ({refused_delivered} of them delivered anyway); publishes succeeded again {:.2}s after \
         the kill; the largest step between a topic's 202 ids: {jump}; A's /healthz: {timeline:?}; \
         the 503s: {reasons:#?}",
        sent.len(),
        acked,
        refused.len(),
        recovered.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_cut_off_from_redis_is_degraded_then_gets_what_it_missed_once_in_order() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let proxy = Proxy::start(redis.addr).await;
    let a = TestServer::start(&["--redis", &proxy.url()]).await;
    until_health(&a, "ok").await;
    let b = node(&redis, &[]).await;
    let subscriber = a.client(Via::H2c).await;
    let (mut events, _) = subscriber.subscribe("/sse/topics/island", None).await;
    let on_b = b.client(Via::H2c).await;
    let before = publish(&on_b, "island", "before").await;
    let got = events.next().await.expect("the event before the cut");
    assert_eq!((got.id, got.data.as_str()), (before.to_string(), "before"));

    // A partition between A and Redis: A's connections stay open and go silent, so only its
    // heartbeat can tell. B still reaches Redis and keeps taking publishes.
    proxy.cut();
    let cut = Instant::now();
    let mut missed = Vec::new();
    for n in 1..=3 {
        missed.push(publish(&on_b, "island", &format!("missed {n}")).await);
    }
    until_health(&a, "degraded").await;
    let noticed = cut.elapsed();
    for n in 4..=6 {
        missed.push(publish(&on_b, "island", &format!("missed {n}")).await);
    }
    let on_a = a.client(Via::H2c).await;
    let health_a = json(on_a.get("/healthz").await).await;
    assert_eq!(health_a["status"], "degraded", "{health_a}");
    assert_eq!(
        health_a["open_streams"]["http2"], 1,
        "A's stream stays open"
    );
    let health_b = json(on_b.get("/healthz").await).await;
    assert_eq!(health_b["status"], "ok", "{health_b}");
    // A publish on A times out: its script waits in the partition, so the 503 must not say
    // nothing was accepted. It runs when the partition heals, after B's.
    let answer = on_a
        .post("/api/topics/island/events", "text/plain", "from A, cut off")
        .await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = text(answer).await;
    assert!(body.contains("it may still be delivered"), "{body}");

    proxy.heal();
    let healed = Instant::now();
    let mut got = events.take(missed.len() + 1).await;
    let caught_up = healed.elapsed();
    let from_a = got.pop().expect("A's event");
    assert_eq!(ids(&got), missed, "exactly what was missed, in order");
    let data: Vec<&str> = got.iter().map(|e| e.data.as_str()).collect();
    let sent: Vec<String> = (1..=6).map(|n| format!("missed {n}")).collect();
    assert_eq!(data, sent);
    assert_eq!(from_a.data, "from A, cut off", "{from_a:?}");
    assert!(ids(&[from_a])[0] > missed[5], "numbered after B's");
    marker_comes_next([&mut events], &on_b, "island").await;
    until_health(&a, "ok").await;
    let status = a.state.hub.redis_status().expect("on redis");
    assert!(status.reconnects >= 1, "A's link came back: {status:?}");
    eprintln!(
        "partition: A was degraded {:.2}s after the cut; caught up {:.2}s after the heal",
        noticed.as_secs_f64(),
        caught_up.as_secs_f64()
    );
}
