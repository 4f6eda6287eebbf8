//! Many topics on one stream, in-process: the event types, payloads unchanged, the cursor
//! that resumes each topic exactly, one topic's `reset`, and the end.

use super::*;
use crate::pubsub::fanout::testing::{Events, meta, ready};
use crate::pubsub::fanout::{Exclusive, Fanout, Limits, StartAt};
use crate::sse::CloseReason;
use crate::sse::parser::ParsedEvent;

fn fanout(replay: usize, queue: usize) -> Fanout {
    Fanout::new(Limits { replay, queue })
}

fn publish(fanout: &Fanout, topic: &str, name: Option<&str>, data: &str) -> u64 {
    let key = format!("topic:{topic}");
    fanout.ensure(&key);
    let name = name.map(|n| EventName::new(n).expect("a name"));
    fanout
        .publish(&key, name.as_ref(), data)
        .expect("publish")
        .id
}

/// `names` on one stream: each topic from its id in `cursor`, live when it has none.
fn follow(fanout: &Fanout, names: &[&str], cursor: Option<&str>) -> Topics {
    let ids = match cursor {
        Some(text) => Cursor::parse(text).expect("a cursor").ids_for(names),
        None => vec![None; names.len()],
    };
    let topics = names.iter().zip(ids).map(|(name, id)| {
        let from = id.map_or(StartAt::Live, StartAt::After);
        let key = format!("topic:{name}");
        let subscription = fanout
            .subscribe(&key, from, meta(), Exclusive::Shared)
            .expect("subscribe");
        (EventName::new(*name).expect("a topic name"), subscription)
    });
    Topics::new(topics.collect())
}

fn stream(topics: Topics) -> Events {
    Box::pin(topics.into_stream())
}

/// (event type, data) of each event.
fn seen(events: &[ParsedEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.event.clone(), e.data.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(t, d)| (t.to_string(), d.to_string()))
        .collect()
}

#[test]
fn an_encoded_event_splits_back_into_its_name_and_data_lines() {
    use crate::pubsub::fanout::{encode, split_event};
    let named = encode(12, Some(&EventName::new("price").expect("name")), "a\nb");
    let (name, data) = split_event(&named);
    assert_eq!(
        (name, &data[..]),
        (Some("price"), &b"data: a\ndata: b\n\n"[..])
    );
    let unnamed = encode(3, None, "event: not a field");
    let (name, data) = split_event(&unnamed);
    assert_eq!(
        (name, &data[..]),
        (None, &b"data: event: not a field\n\n"[..])
    );
}

#[tokio::test]
async fn events_of_every_topic_arrive_with_their_type_and_payload_unchanged() {
    let fanout = fanout(16, 16);
    let topics = follow(&fanout, &["b", "a"], None);
    assert_eq!(
        topics.starts().map(|s| s.name).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let mut events = stream(topics);
    publish(&fanout, "a", None, "one\ntwo");
    publish(&fanout, "b", Some("price"), "{\"p\":1}");
    publish(&fanout, "a", Some("message"), "three");
    publish(&fanout, "a", Some("reset"), "a publisher's own reset");
    publish(&fanout, "other", None, "not followed");
    let (got, ended) = ready(&mut events);
    assert_eq!(ended, None, "still open");
    let mut got = seen(&got);
    got.sort();
    assert_eq!(
        got,
        pairs(&[
            ("topic:a", "one\ntwo"),
            ("topic:a", "three"),
            ("topic:a:reset", "a publisher's own reset"),
            ("topic:b:price", "{\"p\":1}"),
        ])
    );
}

#[tokio::test]
async fn a_reconnect_with_the_last_id_gets_exactly_what_each_topic_missed() {
    let fanout = fanout(16, 16);
    publish(&fanout, "a", None, "a1");
    let mut events = stream(follow(&fanout, &["a", "b", "c"], None));
    publish(&fanout, "a", None, "a2");
    publish(&fanout, "b", None, "b1");
    let (got, _) = ready(&mut events);
    assert_eq!(seen(&got), pairs(&[("topic:a", "a2"), ("topic:b", "b1")]));
    let last_id = got.last().expect("events").id.clone();
    drop(events);

    // Meanwhile: two on a, none on b, one on c.
    publish(&fanout, "a", None, "a3");
    publish(&fanout, "c", None, "c1");
    publish(&fanout, "a", None, "a4");
    let resumed = follow(&fanout, &["a", "b", "c"], Some(&last_id));
    assert_eq!(resumed.replay_len(), 3);
    let mut events = stream(resumed);
    let (got, _) = ready(&mut events);
    let mut got = seen(&got);
    got.sort();
    assert_eq!(
        got,
        pairs(&[("topic:a", "a3"), ("topic:a", "a4"), ("topic:c", "c1")])
    );
    // Once more from the newest id: nothing twice.
    let (_, _) = ready(&mut events);
    let newest = {
        publish(&fanout, "b", None, "b2");
        let (got, _) = ready(&mut events);
        assert_eq!(seen(&got), pairs(&[("topic:b", "b2")]));
        got[0].id.clone()
    };
    drop(events);
    let mut again = stream(follow(&fanout, &["c", "a", "b"], Some(&newest)));
    assert_eq!(
        ready(&mut again).0.len(),
        0,
        "in any URL order, nothing twice"
    );
}

#[tokio::test]
async fn a_topic_added_since_starts_live_and_one_removed_is_ignored() {
    let fanout = fanout(16, 16);
    publish(&fanout, "old", None, "o1");
    publish(&fanout, "kept", None, "k1");
    let topics = follow(&fanout, &["old", "kept"], None);
    let cursor = topics.cursor();
    drop(topics);
    publish(&fanout, "old", None, "o2");
    publish(&fanout, "kept", None, "k2");
    publish(&fanout, "new", None, "n1");
    let mut events = stream(follow(&fanout, &["kept", "new"], Some(&cursor)));
    let (got, _) = ready(&mut events);
    assert_eq!(seen(&got), pairs(&[("topic:kept", "k2")]));
}

#[tokio::test]
async fn a_topic_whose_ring_moved_on_gets_its_own_reset_and_the_rest_resume() {
    let fanout = fanout(2, 16);
    publish(&fanout, "a", None, "a1");
    publish(&fanout, "b", None, "b1");
    let cursor = follow(&fanout, &["a", "b"], None).cursor();
    for n in 2..=5 {
        publish(&fanout, "a", None, &format!("a{n}"));
    }
    publish(&fanout, "b", None, "b2");
    let mut events = stream(follow(&fanout, &["a", "b"], Some(&cursor)));
    let (got, _) = ready(&mut events);
    let reset = got.iter().find(|e| e.event == "reset").expect("a reset");
    let said: serde_json::Value = serde_json::from_str(&reset.data).expect("JSON");
    assert_eq!(said["topic"], "a");
    assert_eq!(
        (said["after"].as_u64(), said["first_available"].as_u64()),
        (Some(1), Some(4))
    );
    let mut rest = seen(&got);
    rest.retain(|(t, _)| t != "reset");
    rest.sort();
    assert_eq!(
        rest,
        pairs(&[("topic:a", "a4"), ("topic:a", "a5"), ("topic:b", "b2")])
    );
    // The reset's id already holds a's new place: reconnecting with it resets nothing more.
    let last = got.last().expect("events").id.clone();
    drop(events);
    let mut again = stream(follow(&fanout, &["a", "b"], Some(&last)));
    assert_eq!(ready(&mut again).0.len(), 0);
}

#[tokio::test]
async fn one_slow_topic_ends_the_whole_stream_and_its_reconnect_misses_nothing() {
    let fanout = fanout(16, 2);
    let topics = follow(&fanout, &["a", "b"], None);
    let cursor = topics.cursor();
    let mut events = stream(topics);
    publish(&fanout, "b", None, "b1");
    for n in 1..=3 {
        publish(&fanout, "a", None, &format!("a{n}"));
    }
    let (before, ended) = ready(&mut events);
    assert_eq!(ended, Some(CloseReason::Slow));
    let from = before.last().map_or(cursor, |e| e.id.clone());
    let (after, _) = ready(&mut stream(follow(&fanout, &["a", "b"], Some(&from))));
    let mut all: Vec<&str> = before
        .iter()
        .chain(&after)
        .map(|e| e.data.as_str())
        .collect();
    all.sort();
    assert_eq!(all, ["a1", "a2", "a3", "b1"], "each once");
}
