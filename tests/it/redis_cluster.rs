//! sselab on a real Redis Cluster (3 masters with 2 replicas each, `cluster-node-timeout
//! 2000`): a master killed with SIGKILL mid-run, and what a 202 promises then.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use sselab::sse::parser::ParsedEvent;

use crate::util::redis_cluster::RedisCluster;
use crate::util::redis_server::{
    marker_comes_next, node_on, publish, subscribe_each, until_health,
};
use crate::util::{Client, Events, PATIENCE, TestServer, Via, json};

const TOPICS: usize = 8;
const ROUNDS: usize = 80;
/// Rounds published before the master is killed.
const BEFORE_KILL: usize = 15;
/// How long one topic of one round may keep retrying its 503s before the round is given up.
const ROUND_PATIENCE: Duration = Duration::from_secs(15);

/// A node on the cluster (any node is a seed), its links to every shard up.
async fn node(cluster: &RedisCluster, extra: &[&str]) -> TestServer {
    node_on(&cluster.seed_url(), extra).await
}

/// What the publisher on B saw.
#[derive(Default)]
struct Published {
    /// Per topic: the (id, payload) of each 202.
    accepted: BTreeMap<String, Vec<(u64, String)>>,
    /// Payloads answered 503 (perhaps delivered: `WAIT` did not confirm them).
    refused: Vec<String>,
    /// Rounds whose every topic got a 202.
    rounds_accepted: usize,
    /// From the kill to the first 202 on the killed shard's topic.
    back_after: Option<Duration>,
}

/// Publish `ROUNDS` rounds, one event per topic each, retrying a 503 with a new payload;
/// `killed` is set by the test once the master is gone.
async fn publish_rounds(
    on_b: &Client,
    topics: &[String],
    kill_now: tokio::sync::oneshot::Sender<()>,
    killed_at: Arc<std::sync::Mutex<Option<Instant>>>,
    killed_topic: &str,
) -> Published {
    let mut out = Published::default();
    let mut kill_now = Some(kill_now);
    for round in 0..ROUNDS {
        if round == BEFORE_KILL
            && let Some(kill) = kill_now.take()
        {
            kill.send(()).expect("the test waits for the kill");
            while killed_at.lock().expect("lock").is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut whole = true;
        for topic in topics {
            let began = Instant::now();
            let mut attempt = 0;
            loop {
                let payload = format!("r{round}-{topic}-try{attempt}");
                let path = format!("/api/topics/{topic}/events");
                let answer = on_b.post(&path, "text/plain", payload.clone()).await;
                match answer.status() {
                    StatusCode::ACCEPTED => {
                        let id = json(answer).await["id"].as_u64().expect("id");
                        out.accepted
                            .entry(topic.clone())
                            .or_default()
                            .push((id, payload));
                        if topic == killed_topic && out.back_after.is_none() {
                            let killed = *killed_at.lock().expect("lock");
                            out.back_after = killed.map(|at| at.elapsed());
                        }
                        break;
                    }
                    StatusCode::SERVICE_UNAVAILABLE => out.refused.push(payload),
                    other => panic!("{other} for {path}"),
                }
                attempt += 1;
                if began.elapsed() > ROUND_PATIENCE {
                    whole = false;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        out.rounds_accepted += usize::from(whole);
    }
    out
}

/// Publish `data`, again while the answer is 503 (a node still finding a shard's new master).
async fn publish_retrying(client: &Client, topic: &str, data: &str) -> u64 {
    let path = format!("/api/topics/{topic}/events");
    let began = Instant::now();
    loop {
        let answer = client.post(&path, "text/plain", data.to_string()).await;
        if answer.status() == StatusCode::ACCEPTED {
            return json(answer).await["id"].as_u64().expect("id");
        }
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(began.elapsed() < PATIENCE, "{path} still refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything each stream got before its marker (published now on every topic).
async fn until_markers(
    streams: &mut [(String, Events)],
    on_b: &Client,
) -> HashMap<String, Vec<ParsedEvent>> {
    let mut got = HashMap::new();
    for (topic, events) in streams.iter_mut() {
        let marker = publish(on_b, topic, "marker").await;
        let mut before = Vec::new();
        loop {
            let event = events
                .next_within(PATIENCE)
                .await
                .unwrap_or_else(|()| {
                    panic!("{topic}: no marker {marker} after {} events", before.len())
                })
                .expect("the stream stays open");
            if event.data == "marker" {
                assert_eq!(event.id, marker.to_string());
                break;
            }
            before.push(event);
        }
        got.insert(topic.clone(), before);
    }
    got
}

/// The Done-when of issue 26: two nodes with `--redis-min-replicas 1`, eight topics read on A
/// and published on B in rounds, a master killed with SIGKILL mid-run.
#[tokio::test(flavor = "multi_thread")]
async fn killing_a_master_mid_run_loses_no_acknowledged_event_and_repeats_none() {
    let Some(mut cluster) = RedisCluster::start().await else {
        return;
    };
    let args = ["--redis-min-replicas", "1"];
    let (a, b) = tokio::join!(node(&cluster, &args), node(&cluster, &args));
    let topics: Vec<String> = (0..TOPICS).map(|n| format!("t{n}")).collect();
    // The shard to kill: the one holding t0 (and whichever others hash there).
    let victim = cluster.master_of("{topic:t0}").await;
    let reader = a.client(Via::H2c).await;
    let streams = subscribe_each(&reader, &topics).await;
    let mut streams: Vec<(String, Events)> = topics.iter().cloned().zip(streams).collect();
    // A's health, watched from the start: degraded (naming the shard) while it is down.
    let watching = Arc::new(AtomicBool::new(true));
    let health = tokio::spawn({
        let (client, watching) = (a.client(Via::H2c).await, watching.clone());
        let victim = victim.to_string();
        async move {
            let mut named = false;
            while watching.load(Ordering::Relaxed) {
                let health = json(client.get("/healthz").await).await;
                let unreachable = health["redis"]["unreachable"].to_string();
                named |= health["status"] == "degraded" && unreachable.contains(&victim);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            named
        }
    });
    let (kill_now, kill_asked) = tokio::sync::oneshot::channel();
    let killed_at = Arc::new(std::sync::Mutex::new(None));
    let publisher = {
        let killed_at = killed_at.clone();
        let topics = topics.clone();
        let on_b = b.client(Via::H2c).await;
        tokio::spawn(async move { publish_rounds(&on_b, &topics, kill_now, killed_at, "t0").await })
    };
    kill_asked.await.expect("the publisher asks for the kill");
    let dead = cluster.kill_master_of("{topic:t0}").await;
    assert_eq!(dead, victim);
    *killed_at.lock().expect("lock") = Some(Instant::now());
    let (promoted, took) = cluster.until_failed_over(dead).await;
    let published = publisher.await.expect("the publisher");
    // A connection of its own now: one opened early and idle for --header-read-timeout (10 s,
    // without a first request) is closed by the server, as a slow client's would be.
    let on_b = b.client(Via::H2c).await;
    let got = until_markers(&mut streams, &on_b).await;
    watching.store(false, Ordering::Relaxed);
    let named = health.await.expect("the health watcher");

    let back_after = published
        .back_after
        .expect("t0 accepted again after the kill");
    eprintln!(
        "killed {dead}; {promoted} took over after {took:?} (cluster); t0 accepted again {back_after:?} \
         after the kill; rounds acknowledged {} of {ROUNDS}; 503s {}",
        published.rounds_accepted,
        published.refused.len()
    );
    assert!(back_after < Duration::from_secs(10), "{back_after:?}");
    assert!(
        published.rounds_accepted >= 60,
        "{}",
        published.rounds_accepted
    );
    let mut refused_delivered = 0;
    for topic in &topics {
        let events = &got[topic];
        let accepted = &published.accepted[topic];
        // Every 202 exactly once, in order; ids strictly increasing.
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e.id.parse().expect("a number"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{topic}: {ids:?}");
        assert!(
            events.iter().all(|e| e.event != "reset"),
            "{topic}: no reset"
        );
        let delivered: HashMap<u64, &str> = events
            .iter()
            .map(|e| (e.id.parse().expect("id"), e.data.as_str()))
            .collect();
        for (id, payload) in accepted {
            assert_eq!(
                delivered.get(id).copied(),
                Some(payload.as_str()),
                "{topic}: 202 id {id} delivered once, with its payload"
            );
        }
        let payloads: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        for payload in &payloads {
            let count = payloads.iter().filter(|p| *p == payload).count();
            assert_eq!(count, 1, "{topic}: {payload} delivered {count} times");
        }
        refused_delivered += published
            .refused
            .iter()
            .filter(|p| payloads.contains(&p.as_str()))
            .count();
    }
    eprintln!(
        "of the {} payloads answered 503, {refused_delivered} were delivered anyway",
        published.refused.len()
    );
    assert!(named, "A's /healthz said degraded, naming {victim}");
    until_health(&a, "ok").await;
    let status = a.state.hub.redis_status().expect("on redis");
    let shard = status
        .shards
        .iter()
        .find(|s| s.master == promoted.to_string())
        .expect("the promoted master's shard");
    assert!(shard.failovers >= 1 && shard.resubscribes >= 1, "{shard:?}");
    assert!(shard.catch_ups >= shard.resubscribes, "{shard:?}");
    // And the streams go on live.
    let (_, mut streams): (Vec<String>, Vec<Events>) = streams.into_iter().unzip();
    marker_comes_next(streams.iter_mut().take(1), &on_b, "t0").await;
}

/// What a failover can lose with `--redis-min-replicas 0`, and that the promoted master never
/// gives an id again: the replicas of a master are kept from its last writes (asleep, their
/// links cut), then it is killed.
#[tokio::test(flavor = "multi_thread")]
async fn a_promoted_replica_that_missed_writes_gives_no_id_twice() {
    let Some(mut cluster) = RedisCluster::start().await else {
        return;
    };
    let (a, waits) = tokio::join!(
        node(&cluster, &[]),
        node(&cluster, &["--redis-min-replicas", "1"])
    );
    let on_a = a.client(Via::H2c).await;
    // First, a broadcast reaches sessions on every master (it looks them up on each).
    let names = cluster.one_name_per_master("session", "s").await;
    assert_eq!(names.len(), 3, "{names:?}");
    let mut sessions = Vec::new();
    for name in &names {
        let (events, _) = on_a.subscribe(&format!("/sse/sessions/{name}"), None).await;
        sessions.push(events);
    }
    let answer = waits
        .client(Via::H2c)
        .await
        .post("/api/broadcast", "text/plain", "to every shard")
        .await;
    assert_eq!(crate::util::accepted(answer).await["sessions"], 3);
    for events in &mut sessions {
        assert_eq!(
            events.next().await.expect("the broadcast").data,
            "to every shard"
        );
    }
    let (mut events, _) = on_a.subscribe("/sse/topics/x", None).await;
    for n in 1..=3 {
        publish(&on_a, "x", &format!("kept {n}")).await;
    }
    let master = cluster.master_of("{topic:x}").await;
    let replicas = cluster.replicas_of(master).await;
    assert_eq!(replicas.len(), 2, "two replicas");
    // The replicas sleep, and the master's links to them are cut: what it takes now reaches no
    // replica (not even their socket buffers).
    let sleepers: Vec<_> = replicas
        .iter()
        .map(|replica| {
            let replica: SocketAddr = *replica;
            tokio::spawn(async move {
                crate::util::redis_nodes::command_on::<String>(replica, &["DEBUG", "SLEEP", "3"])
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cut: i64 = cluster
        .command_on(master, &["CLIENT", "KILL", "TYPE", "replica"])
        .await;
    assert_eq!(cut, 2, "both replica links cut");
    // With --redis-min-replicas 1: no replica confirms; 503, saying it may be delivered.
    let on_waits = waits.client(Via::H2c).await;
    let answer = on_waits
        .post("/api/topics/x/events", "text/plain", "unconfirmed")
        .await;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = crate::util::text(answer).await;
    assert!(reason.contains("may still be delivered"), "{reason}");
    // With 0: accepted, delivered live, and about to be lost.
    let mut lost = Vec::new();
    for n in 1..=3 {
        lost.push(publish(&on_a, "x", &format!("lost {n}")).await);
    }
    let delivered = events.take(7).await;
    let last_delivered: u64 = delivered[6].id.parse().expect("id");
    assert_eq!(last_delivered, lost[2]);
    let dead = cluster.kill_master_of("{topic:x}").await;
    for sleeper in sleepers {
        sleeper.await.expect("DEBUG SLEEP");
    }
    let (promoted, took) = cluster.until_failed_over(dead).await;
    // What the promoted replica holds: the counter from before the cut.
    let counter: u64 = cluster
        .command_on(promoted, &["GET", "sselab:{topic:x}:id"])
        .await;
    let held: Vec<redis::Value> = cluster
        .command_on(promoted, &["XRANGE", "sselab:{topic:x}:events", "-", "+"])
        .await;
    eprintln!(
        "failover after {took:?}: the promoted replica's counter is {counter}, {} behind the last \
         id delivered ({last_delivered}); it holds {} events (the 3 lost and the unconfirmed one \
         are gone)",
        last_delivered - counter,
        held.len()
    );
    assert!(
        counter < last_delivered,
        "the promoted replica missed the last writes"
    );
    // The next publish does not give those ids again: it jumps past them, and A gets it. (A
    // may answer 503 until its connection has read the new slot map.)
    let after = publish_retrying(&on_a, "x", "after").await;
    assert!(after > last_delivered, "{after} > {last_delivered}");
    let next = events.next().await.expect("the stream stays open");
    assert_eq!((next.id, next.data.as_str()), (after.to_string(), "after"));
    // A client that had the lost events resumes after them, without a gap or a reset.
    let resumed = a.client(Via::H2c).await;
    let (mut again, connected) = resumed
        .subscribe("/sse/topics/x", Some(&last_delivered.to_string()))
        .await;
    assert_eq!(connected["replayed"], 1, "{connected}");
    let first = again.next().await.expect("the replay");
    assert_eq!(
        (first.event.as_str(), first.data.as_str()),
        ("message", "after")
    );
    // A client that missed them resumes from before and never gets them: they went with the old
    // master (what a 202 risks with --redis-min-replicas 0; the ring itself lost nothing, so
    // no reset).
    let (mut before, _) = a
        .client(Via::H2c)
        .await
        .subscribe("/sse/topics/x", Some(&delivered[2].id))
        .await;
    let first = before.next().await.expect("the replay");
    assert_eq!(first.data, "after");
}
