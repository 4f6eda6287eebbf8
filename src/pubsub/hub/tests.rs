//! The hub's rules with paused time: replay without gaps, resets, slow subscribers, linger,
//! same-id policies and deletion.

use std::time::Duration;

use super::*;
use crate::pubsub::fanout::Limits;
use crate::pubsub::fanout::testing::{events, ids, meta, ready};

fn hub(replay: usize, queue: usize, same_id: Exclusive) -> Hub {
    Hub::new(
        Fanout::new(Limits { replay, queue }),
        HubConfig {
            linger: Duration::from_secs(60),
            max_sessions: 10,
            max_topics: 10,
            same_id,
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_gets_exactly_the_missed_events_then_live_ones() {
    let hub = hub(256, 1024, Exclusive::Replace);
    let mut first = events(
        hub.subscribe_session("s", None, meta())
            .await
            .expect("subscribe"),
    );
    for n in 0..5 {
        hub.publish_session("s", None, &format!("e{n}"))
            .await
            .expect("publish");
    }
    assert_eq!(ids(&ready(&mut first).0), [1, 2, 3, 4, 5]);
    drop(first);

    for n in 5..55 {
        let published = hub
            .publish_session("s", None, &format!("e{n}"))
            .await
            .expect("kept");
        assert_eq!(published.subscribers, 0, "nobody connected while away");
    }
    let mut again = events(
        hub.subscribe_session("s", Some(5), meta())
            .await
            .expect("resubscribe"),
    );
    hub.publish_session("s", None, "live")
        .await
        .expect("publish");
    let (got, ended) = ready(&mut again);
    assert_eq!(
        ids(&got),
        (6..=56).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    assert_eq!(got.last().expect("live").data, "live");
    assert_eq!(ended, None, "still open");
    assert_eq!(hub.session("s").expect("info").reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_last_event_id_older_than_the_ring_gets_a_reset_first() {
    let hub = hub(10, 1024, Exclusive::Replace);
    drop(
        hub.subscribe_session("s", None, meta())
            .await
            .expect("subscribe"),
    );
    for n in 0..30 {
        hub.publish_session("s", None, &n.to_string())
            .await
            .expect("publish");
    }
    let mut again = events(
        hub.subscribe_session("s", Some(3), meta())
            .await
            .expect("resubscribe"),
    );
    let (got, _) = ready(&mut again);
    assert_eq!(got[0].event, "reset");
    let reset: serde_json::Value = serde_json::from_str(&got[0].data).expect("json");
    assert_eq!(reset["after"], 3);
    assert_eq!(reset["first_available"], 21);
    assert_eq!(ids(&got[1..]), (21..=30).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_does_not_read_is_cut_as_slow_and_the_others_get_everything() {
    let hub = hub(256, 2, Exclusive::Shared);
    let mut stalled = events(
        hub.subscribe_topic("t", None, meta())
            .await
            .expect("slow one"),
    );
    let mut fast = events(
        hub.subscribe_topic("t", None, meta())
            .await
            .expect("fast one"),
    );
    let mut fast_ids = Vec::new();
    for n in 0..5 {
        let published = hub
            .publish_topic("t", None, &n.to_string())
            .await
            .expect("publish");
        fast_ids.extend(ids(&ready(&mut fast).0));
        if n >= 2 {
            assert_eq!(published.subscribers, 1, "only the fast one is left");
        }
    }
    assert_eq!(fast_ids, [1, 2, 3, 4, 5]);
    let topic = &hub.topics()[0];
    assert_eq!((topic.subscribers, topic.dropped), (1, 1));
    // The stalled stream ends at once with `slow`, without draining its queue.
    assert_eq!(ready(&mut stalled), (Vec::new(), Some(CloseReason::Slow)));
}

#[tokio::test(start_paused = true)]
async fn a_disconnected_session_lingers_then_expires() {
    let hub = hub(256, 16, Exclusive::Replace);
    drop(
        hub.subscribe_session("s", None, meta())
            .await
            .expect("subscribe"),
    );
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(
        hub.publish_session("s", None, "kept").await.is_ok(),
        "within linger"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        hub.publish_session("s", None, "late").await,
        Err(HubError::NotFound {
            what: "session",
            id: "s".into()
        })
    );
    assert!(hub.session("s").is_none());

    // The sweeper forgets idle ones without being asked: nothing here calls `sweep`.
    let stop = tokio_util::sync::CancellationToken::new();
    hub.spawn_sweeper(stop.clone());
    drop(
        hub.subscribe_session("t", None, meta())
            .await
            .expect("subscribe"),
    );
    assert_eq!(hub.session_count(), 1);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(hub.session_count(), 1, "still within the linger");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hub.session_count(), 0);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn same_id_replaces_the_older_stream_or_rejects_the_newcomer() {
    let replacing = hub(256, 16, Exclusive::Replace);
    let mut older = events(
        replacing
            .subscribe_session("s", None, meta())
            .await
            .expect("older"),
    );
    let _newer = replacing
        .subscribe_session("s", None, meta())
        .await
        .expect("newer");
    let (got, ended) = ready(&mut older);
    assert_eq!(got.last().expect("replaced event").event, "replaced");
    assert_eq!(ended, Some(CloseReason::Replaced));

    let rejecting = hub(256, 16, Exclusive::Reject);
    let _first = rejecting
        .subscribe_session("s", None, meta())
        .await
        .expect("first");
    assert_eq!(
        rejecting.subscribe_session("s", None, meta()).await.err(),
        Some(HubError::Conflict)
    );
}

#[tokio::test(start_paused = true)]
async fn delete_sends_bye_after_queued_events_and_reconnects_are_gone() {
    let hub = hub(256, 16, Exclusive::Replace);
    let mut stream = events(
        hub.subscribe_session("s", None, meta())
            .await
            .expect("subscribe"),
    );
    hub.publish_session("s", None, "last words")
        .await
        .expect("publish");
    hub.delete_session("s").await.expect("delete");
    let (got, ended) = ready(&mut stream);
    assert_eq!(
        got[0].data, "last words",
        "queued events are delivered first"
    );
    assert_eq!(got[1].event, "bye");
    assert_eq!(ended, Some(CloseReason::Bye));

    assert_eq!(
        hub.subscribe_session("s", Some(1), meta()).await.err(),
        Some(HubError::Gone)
    );
    assert!(matches!(
        hub.publish_session("s", None, "x").await,
        Err(HubError::NotFound { .. })
    ));
    // A fresh subscribe (no Last-Event-ID) starts the session anew.
    assert!(hub.subscribe_session("s", None, meta()).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn caps_refuse_new_sessions_and_topics() {
    let hub = hub(256, 16, Exclusive::Replace);
    let mut _held = Vec::new();
    for n in 0..10 {
        _held.push(
            hub.subscribe_session(&n.to_string(), None, meta())
                .await
                .expect("under cap"),
        );
    }
    assert!(matches!(
        hub.subscribe_session("eleventh", None, meta()).await,
        Err(HubError::Full {
            cap: Cap::Sessions,
            max: 10
        })
    ));
    for n in 0..10 {
        hub.publish_topic(&n.to_string(), None, "x")
            .await
            .expect("under cap");
    }
    assert!(matches!(
        hub.publish_topic("eleventh", None, "x").await,
        Err(HubError::Full {
            cap: Cap::Topics,
            ..
        })
    ));
}
