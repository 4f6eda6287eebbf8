//! The fan-out's guarantees, one test each, with paused time where time matters: numbering,
//! replay and its `reset`s, the slow cut, same-id policies, closing, unregistering, and
//! idle channels.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::testing::{events, ids, meta, ready};
use super::*;
use crate::sse::parser::ParsedEvent;
use crate::sse::{Out, names};

const KEY: &str = "topic:t";

fn fanout(replay: usize, queue: usize) -> Fanout {
    Fanout::new(Limits { replay, queue })
}

/// A channel with `count` events already published, numbered from 1.
fn with_events(fanout: &Fanout, key: &str, count: u64) {
    fanout.ensure(key);
    for n in 1..=count {
        fanout
            .publish(key, None, &format!("e{n}"))
            .expect("publish");
    }
}

fn subscribe(fanout: &Fanout, from: StartAt) -> Subscription {
    fanout
        .subscribe(KEY, from, meta(), Exclusive::Shared)
        .expect("subscribe")
}

/// What `subscription` gives when one more event, `live`, is published after it began.
fn with_one_live(
    fanout: &Fanout,
    subscription: Subscription,
) -> (Vec<ParsedEvent>, Option<CloseReason>) {
    let mut stream = events(subscription);
    fanout.publish(KEY, None, "live").expect("publish");
    ready(&mut stream)
}

/// A `reset` event's `id:`, and its JSON's `after`, `first_available` and `last`.
fn reset(event: &ParsedEvent) -> (u64, [u64; 3]) {
    assert_eq!(event.event, "reset");
    let said: serde_json::Value = serde_json::from_str(&event.data).expect("reset JSON");
    let field = |name: &str| said[name].as_u64().expect("a number");
    (
        event.id.parse().expect("numeric id"),
        [field("after"), field("first_available"), field("last")],
    )
}

#[tokio::test]
async fn ids_are_numbered_from_1_in_each_channel() {
    let fanout = fanout(16, 16);
    fanout.ensure("topic:a");
    fanout.ensure("topic:b");
    let mut a = events(
        fanout
            .subscribe("topic:a", StartAt::Live, meta(), Exclusive::Shared)
            .expect("subscribe"),
    );
    let published: Vec<Published> = ["topic:a", "topic:b", "topic:a", "topic:a", "topic:b"]
        .iter()
        .map(|key| fanout.publish(key, None, "x").expect("publish"))
        .collect();
    let numbered: Vec<(u64, usize)> = published.iter().map(|p| (p.id, p.subscribers)).collect();
    assert_eq!(numbered, [(1, 1), (1, 0), (2, 1), (3, 1), (2, 0)]);
    assert_eq!(ids(&ready(&mut a).0), [1, 2, 3]);
    assert_eq!(fanout.info("topic:b").expect("b").last_id, 2);
    assert_eq!(fanout.totals().published, 5);
    assert_eq!(
        fanout.publish("topic:missing", None, "x"),
        None,
        "publishing creates no channel"
    );
}

#[tokio::test]
async fn a_subscriber_after_k_gets_the_events_after_k_then_live_ones() {
    let fanout = fanout(16, 16);
    with_events(&fanout, KEY, 5);
    let subscription = subscribe(&fanout, StartAt::After(2));
    assert_eq!((subscription.cursor, subscription.replay_len()), (2, 3));
    let (got, ended) = with_one_live(&fanout, subscription);
    assert_eq!(ids(&got), [3, 4, 5, 6], "no gap, no repeat");
    assert_eq!(got[0].data, "e3");
    assert_eq!(got[3].data, "live");
    assert_eq!(ended, None, "still live");

    let info = fanout.info(KEY).expect("info");
    assert_eq!((info.reconnects, info.sent), (1, 4));
    let totals = fanout.totals();
    assert_eq!((totals.replayed, totals.resets), (3, 0));
}

#[tokio::test]
async fn a_fresh_start_after_the_ring_dropped_old_events_gets_a_reset_then_the_held_ones() {
    let fanout = fanout(3, 16);
    with_events(&fanout, KEY, 5);
    let subscription = subscribe(&fanout, StartAt::Start);
    assert_eq!(subscription.cursor, 0);
    let (got, ended) = ready(&mut events(subscription));
    assert_eq!(
        reset(&got[0]),
        (2, [0, 3, 5]),
        "id: first_available - 1, so a reconnect does not reset again"
    );
    assert_eq!(ids(&got[1..]), [3, 4, 5]);
    assert_eq!(ended, None);
    let totals = fanout.totals();
    assert_eq!((totals.resets, totals.replayed), (1, 3));
}

#[tokio::test]
async fn a_last_event_id_beyond_the_last_id_gets_a_reset_then_live_events() {
    // The channel was forgotten and started over; the client holds ids it never gave.
    let fanout = fanout(16, 16);
    with_events(&fanout, KEY, 3);
    let subscription = subscribe(&fanout, StartAt::After(10));
    assert_eq!((subscription.cursor, subscription.replay_len()), (10, 1));
    let (got, ended) = with_one_live(&fanout, subscription);
    assert_eq!(reset(&got[0]), (3, [10, 4, 3]));
    assert_eq!(
        ids(&got[1..]),
        [4],
        "then live, numbered on from the channel's last id"
    );
    assert_eq!(ended, None);
    assert_eq!(fanout.totals().resets, 1);
}

#[tokio::test]
async fn a_full_queue_cuts_the_subscriber_as_slow_and_publish_never_blocks() {
    let fanout = fanout(16, 2);
    fanout.ensure(KEY);
    let transports_dropped = Arc::new(AtomicUsize::new(0));
    let dropped = transports_dropped.clone();
    let stalled_meta = SubscriberMeta {
        drop_transport: Some(DropTransport(Arc::new(move || {
            dropped.fetch_add(1, Ordering::SeqCst);
        }))),
        ..meta()
    };
    let mut stalled = events(
        fanout
            .subscribe(KEY, StartAt::Live, stalled_meta, Exclusive::Shared)
            .expect("stalled"),
    );
    let mut reading = events(subscribe(&fanout, StartAt::Live));

    let mut delivered = Vec::new();
    for n in 1..=5 {
        // Returns at once even though one queue is full: nothing here awaits.
        delivered.push(
            fanout
                .publish(KEY, None, &n.to_string())
                .expect("publish")
                .subscribers,
        );
        assert_eq!(ids(&ready(&mut reading).0), [n]);
    }
    assert_eq!(delivered, [2, 2, 1, 1, 1], "cut at the third event");
    assert_eq!(fanout.totals().slow, 1);
    let info = fanout.info(KEY).expect("info");
    assert_eq!((info.subscriber_count, info.dropped), (1, 1));
    assert_eq!(transports_dropped.load(Ordering::SeqCst), 1);
    // The cut stream ends at once, without draining what it had queued.
    assert_eq!(ready(&mut stalled), (Vec::new(), Some(CloseReason::Slow)));
}

#[tokio::test]
async fn replace_ends_the_older_with_replaced_and_reject_refuses_with_busy() {
    let fanout = fanout(16, 16);
    let mut older = events(
        fanout
            .subscribe(KEY, StartAt::Start, meta(), Exclusive::Replace)
            .expect("older"),
    );
    let _newer = fanout
        .subscribe(KEY, StartAt::Start, meta(), Exclusive::Replace)
        .expect("newer");
    let (got, ended) = ready(&mut older);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, "replaced");
    assert_eq!(ended, Some(CloseReason::Replaced));
    assert_eq!(fanout.info(KEY).expect("info").subscriber_count, 1);

    let refused = fanout.subscribe(KEY, StartAt::Start, meta(), Exclusive::Reject);
    assert_eq!(refused.err(), Some(SubscribeError::Busy));
    assert_eq!(fanout.info(KEY).expect("info").subscriber_count, 1);
}

/// A stream whose task sleeps until something arrives is woken for a frame, and for
/// `replaced` while frames are still queued: those are skipped, and the `replaced` event and
/// the reason follow at once.
#[tokio::test]
async fn a_waiting_stream_is_woken_for_frames_and_for_replaced_which_skips_its_queue() {
    use futures_util::StreamExt;

    let fanout = fanout(16, 16);
    let mut older = events(
        fanout
            .subscribe(KEY, StartAt::Live, meta(), Exclusive::Replace)
            .expect("older"),
    );
    // One thread: the reader runs only when this task yields, so what it finds is known.
    let reader = tokio::spawn(async move {
        let mut parser = crate::sse::parser::Parser::new();
        let mut got = Vec::new();
        while let Some(out) = older.next().await {
            match out {
                Out::Send(bytes) => got.extend(parser.feed(&bytes).into_iter().map(|e| e.data)),
                Out::Close(reason) => got.push(format!("closed: {reason:?}")),
            }
        }
        got
    });
    tokio::task::yield_now().await; // the reader finds nothing and sleeps
    fanout.publish(KEY, None, "one").expect("publish");
    tokio::task::yield_now().await; // woken: it takes "one" and sleeps again
    fanout.publish(KEY, None, "two").expect("publish");
    fanout.publish(KEY, None, "three").expect("publish");
    let _newer = fanout
        .subscribe(KEY, StartAt::Live, meta(), Exclusive::Replace)
        .expect("newer");
    let got = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the reader was woken")
        .expect("reader");
    assert_eq!(
        got,
        [
            "one",
            "another connection subscribed with this id",
            "closed: Replaced"
        ]
    );
}

#[tokio::test]
async fn close_lets_the_queue_drain_then_ends_with_the_reason() {
    let fanout = fanout(16, 16);
    let mut stream = events(subscribe(&fanout, StartAt::Live));
    fanout.publish(KEY, None, "one").expect("publish");
    fanout.publish(KEY, None, "two").expect("publish");
    assert_eq!(fanout.close(KEY, CloseReason::Bye, false), 1);
    let (got, ended) = ready(&mut stream);
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("message", "one"),
            ("message", "two"),
            ("bye", "the session was closed by the server")
        ]
    );
    assert_eq!(ended, Some(CloseReason::Bye));

    // `end` says nothing more than closing; a channel closed without `finish` stays open.
    let mut again = events(subscribe(&fanout, StartAt::Live));
    assert_eq!(fanout.close(KEY, CloseReason::End, false), 1);
    assert_eq!(ready(&mut again), (Vec::new(), Some(CloseReason::End)));
    assert!(fanout.publish(KEY, None, "still open").is_some());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_subscription_unregisters_it_once_and_the_channel_goes_idle() {
    let fanout = fanout(16, 16);
    let first = events(subscribe(&fanout, StartAt::Live));
    let second = subscribe(&fanout, StartAt::Live);
    let info = fanout.info(KEY).expect("info");
    assert_eq!((info.subscriber_count, info.idle_since), (2, None));

    drop(second);
    let info = fanout.info(KEY).expect("info");
    assert_eq!((info.subscriber_count, info.idle_since), (1, None));

    tokio::time::advance(Duration::from_secs(5)).await;
    drop(first);
    let info = fanout.info(KEY).expect("info");
    assert_eq!(info.subscriber_count, 0);
    assert_eq!(
        info.idle_since,
        Some(Instant::now()),
        "idle from the last leave"
    );

    // A stream that ended (closed) and is dropped later leaves nothing twice: the newer
    // subscriber stays registered and the channel is not idle.
    let mut ended = events(subscribe(&fanout, StartAt::Live));
    fanout.close(KEY, CloseReason::End, false);
    assert_eq!(ready(&mut ended).1, Some(CloseReason::End));
    let newer = subscribe(&fanout, StartAt::Live);
    drop(ended);
    let info = fanout.info(KEY).expect("info");
    assert_eq!((info.subscriber_count, info.idle_since), (1, None));
    drop(newer);
    assert_eq!(fanout.info(KEY).expect("info").subscriber_count, 0);
}

#[tokio::test(start_paused = true)]
async fn sweep_idle_removes_only_channels_idle_for_linger() {
    let linger = Duration::from_secs(60);
    let fanout = fanout(16, 16);
    fanout.ensure("session:old");
    fanout.ensure("topic:old");
    let _held = fanout
        .subscribe("session:held", StartAt::Live, meta(), Exclusive::Replace)
        .expect("held");
    tokio::time::advance(Duration::from_secs(30)).await;
    fanout.ensure("session:recent");
    tokio::time::advance(Duration::from_secs(30)).await;

    assert_eq!(fanout.sweep_idle("session:", linger), ["session:old"]);
    assert_eq!(fanout.keys("session:"), ["session:held", "session:recent"]);
    assert_eq!(fanout.count("session:"), 2);
    assert!(fanout.exists("topic:old"), "another prefix is not swept");

    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(fanout.sweep_idle("session:", linger).is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(fanout.sweep_idle("session:", linger), ["session:recent"]);
    assert_eq!(fanout.keys("session:"), ["session:held"]);
}

#[tokio::test]
async fn dropping_a_subscription_after_remove_does_not_bring_the_channel_back() {
    let fanout = fanout(16, 16);
    let mut stream = events(subscribe(&fanout, StartAt::Live));
    assert!(fanout.remove(KEY, CloseReason::Bye));
    assert!(!fanout.exists(KEY));
    let (got, ended) = ready(&mut stream);
    assert_eq!(got[0].event, "bye");
    assert_eq!(ended, Some(CloseReason::Bye));

    drop(stream);
    assert!(!fanout.exists(KEY));
    assert!(fanout.info(KEY).is_none());
    assert_eq!(fanout.count("topic:"), 0);
    assert_eq!(fanout.publish(KEY, None, "x"), None);
}

#[tokio::test]
async fn a_finished_channel_gives_what_a_subscriber_lacks_then_ends() {
    let fanout = fanout(3, 16);
    with_events(&fanout, KEY, 4);
    fanout
        .publish(KEY, Some(&names::DONE), "final")
        .expect("publish");
    fanout.close(KEY, CloseReason::End, true);
    let subscribers = |fanout: &Fanout| fanout.info(KEY).expect("info").subscriber_count;

    // A first visit: the last event, with its own id, then the end; nobody is registered.
    let first_visit = subscribe(&fanout, StartAt::Start);
    assert_eq!((first_visit.cursor, first_visit.replay_len()), (4, 1));
    assert_eq!(subscribers(&fanout), 0);
    let (got, ended) = ready(&mut events(first_visit));
    assert_eq!(
        (got[0].event.as_str(), got[0].data.as_str()),
        ("done", "final")
    );
    assert_eq!((ids(&got), ended), (vec![5], Some(CloseReason::End)));

    // A resume from an older id: what came after it (a reset first where the ring lost
    // some), then the end.
    let (got, ended) = ready(&mut events(subscribe(&fanout, StartAt::After(3))));
    assert_eq!((ids(&got), ended), (vec![4, 5], Some(CloseReason::End)));
    let (got, ended) = ready(&mut events(subscribe(&fanout, StartAt::After(1))));
    assert_eq!(reset(&got[0]), (2, [1, 3, 5]));
    assert_eq!(
        (ids(&got[1..]), ended),
        (vec![3, 4, 5], Some(CloseReason::End))
    );

    // Nothing to give: the last id is held, or only live events were asked for.
    for from in [StartAt::After(5), StartAt::After(9), StartAt::Live] {
        let refused = fanout.subscribe(KEY, from, meta(), Exclusive::Shared);
        assert_eq!(refused.err(), Some(SubscribeError::Finished), "{from:?}");
    }
    assert_eq!(subscribers(&fanout), 0);
    assert_eq!(fanout.publish(KEY, None, "late"), None, "no more events");
}

/// Counts its wake-ups.
#[derive(Default)]
struct Woken(AtomicUsize);

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A publish to many waiting subscribers wakes them from a task of its own, after the
/// channel's lock: every one is woken once and then reads the event.
#[tokio::test]
async fn a_wide_publish_wakes_every_waiting_subscriber_once() {
    use std::task::{Context, Poll, Waker};

    use futures_util::Stream;

    const SUBSCRIBERS: usize = 200;
    let fanout = fanout(0, 4);
    fanout.ensure(KEY);
    let mut readers: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let stream = subscribe(&fanout, StartAt::Live).into_stream();
            (stream, Arc::new(Woken::default()))
        })
        .collect();
    let poll = |stream: &mut SubscriptionStream, woken: &Arc<Woken>| {
        let waker = Waker::from(Arc::clone(woken));
        Pin::new(stream).poll_next(&mut Context::from_waker(&waker))
    };
    for (stream, woken) in &mut readers {
        assert!(poll(stream, woken).is_pending(), "nothing published yet");
    }
    fanout.publish(KEY, None, "wide").expect("publish");
    let all_woken = |readers: &[(SubscriptionStream, Arc<Woken>)]| {
        readers
            .iter()
            .all(|(_, woken)| woken.0.load(Ordering::SeqCst) > 0)
    };
    for _ in 0..1000 {
        if all_woken(&readers) {
            break;
        }
        tokio::task::yield_now().await;
    }
    for (stream, woken) in &mut readers {
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "woken once");
        let Poll::Ready(Some(Out::Send(frame))) = poll(stream, woken) else {
            panic!("the event is there once woken");
        };
        assert!(String::from_utf8_lossy(&frame).contains("data: wide"));
    }
}
