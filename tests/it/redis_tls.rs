//! `rediss://` beyond one node: a Redis Cluster speaking only TLS (its nodes to each other too),
//! its certificate from a CA of its own that `--redis-ca` names, and the refusal without it;
//! Sentinel over TLS (`rediss+sentinel://`), the Sentinels and the master checked against it.

use crate::util::redis_cluster::RedisCluster;
use crate::util::redis_sentinel::RedisSentinel;
use crate::util::redis_server::{
    RedisTls, marker_comes_next, node_on, publish, subscribe_each, untrusted_ca_is_refused,
};
use crate::util::{TestServer, Via, json};

/// Two nodes on `url`, trusting the CA of `tls`.
async fn two_nodes_trusting(url: &str, tls: Option<&RedisTls>) -> (TestServer, TestServer) {
    let ca = tls.expect("TLS").ca.display().to_string();
    let trusting = ["--redis-ca", ca.as_str()];
    tokio::join!(node_on(url, &trusting), node_on(url, &trusting))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_cluster_with_its_own_ca_works_on_every_shard_and_refuses_an_untrusted_one() {
    let Some(cluster) = RedisCluster::start_tls().await else {
        return;
    };
    let seed = cluster.seed_url();
    assert!(seed.starts_with("rediss://"), "{seed}");
    let (a, b) = two_nodes_trusting(&seed, cluster.tls.as_ref()).await;
    // One topic on each of the three masters.
    let topics = cluster.one_name_per_master("topic", "t").await;
    assert_eq!(topics.len(), 3, "{topics:?}");
    let reader = a.client(Via::H2c).await;
    let mut streams = subscribe_each(&reader, &topics).await;
    let on_b = b.client(Via::H2c).await;
    let mut given = vec![Vec::new(); topics.len()];
    for round in 0..3 {
        for (topic, ids) in topics.iter().zip(&mut given) {
            let id = publish(&on_b, topic, &format!("{topic}-{round}")).await;
            ids.push((id.to_string(), format!("{topic}-{round}")));
        }
    }
    for ((topic, events), ids) in topics.iter().zip(&mut streams).zip(&given) {
        let got: Vec<(String, String)> = events
            .take(3)
            .await
            .into_iter()
            .map(|e| (e.id, e.data))
            .collect();
        assert_eq!(&got, ids, "{topic}: each event once, in order");
    }
    for (topic, events) in topics.iter().zip(&mut streams) {
        marker_comes_next([events], &on_b, topic).await;
    }
    let health = json(reader.get("/healthz").await).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["redis"]["kind"], "cluster", "{health}");
    let shards = health["redis"]["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 3, "{health}");
    assert!(shards.iter().all(|s| s["connected"] == true), "{health}");

    untrusted_ca_is_refused(&seed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_over_tls_with_its_own_ca_names_a_master_that_works() {
    let Some(sentinel) = RedisSentinel::start_tls().await else {
        return;
    };
    let url = sentinel.url();
    assert!(url.starts_with("rediss+sentinel://"), "{url}");
    let (a, b) = two_nodes_trusting(&url, sentinel.tls.as_ref()).await;
    let reader = a.client(Via::H2c).await;
    let (mut events, _) = reader.subscribe("/sse/topics/tls", None).await;
    let on_b = b.client(Via::H2c).await;
    let mut given = Vec::new();
    for n in 0..3 {
        let id = publish(&on_b, "tls", &format!("s{n}")).await;
        given.push((id.to_string(), format!("s{n}")));
    }
    let got: Vec<(String, String)> = events
        .take(3)
        .await
        .into_iter()
        .map(|e| (e.id, e.data))
        .collect();
    assert_eq!(got, given, "each event once, in order");
    marker_comes_next([&mut events], &on_b, "tls").await;
    let health = json(reader.get("/healthz").await).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["redis"]["kind"], "sentinel", "{health}");
}
