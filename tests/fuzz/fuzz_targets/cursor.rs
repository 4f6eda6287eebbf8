//! The id of a stream of many topics, from any text a client may send back as its
//! `Last-Event-ID`: `Cursor::parse` never panics, refuses with a one-line reason, and what it
//! accepts holds 1 to `MAX_ENTRIES` topics that write out to a cursor reading back the same;
//! any topics and ids this target makes up write out in base64url (nothing a browser would
//! preflight for its bytes) and read back exactly, in any URL order.
//!
//! Input: one flags byte. Bit 0 clear: the rest is the text. Bit 0 set: the rest is up to
//! 64 topics, each a length byte (1-8), that many name bytes (mapped to `a-z`) and eight bytes
//! of id. Seeds read like `\0AQAZogEHiwA`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sselab::pubsub::multi::cursor::{self, Cursor, MAX_ENTRIES};
use sselab_fuzz::assert_reason;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    if flags & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        match Cursor::parse(&text) {
            Err(bad) => assert_reason(&bad.to_string()),
            Ok(cursor) => {
                assert!((1..=MAX_ENTRIES).contains(&cursor.len()));
                let again = Cursor::parse(&cursor::encode(cursor.entries())).expect("written");
                assert_eq!(again.entries(), cursor.entries());
            }
        }
        return;
    }
    let topics = made_up(rest);
    if topics.is_empty() {
        return;
    }
    let mut by_name = topics.clone();
    by_name.sort();
    let entries: Vec<(u16, u64)> = by_name
        .iter()
        .map(|(n, id)| (cursor::tag(n), *id))
        .collect();
    let text = cursor::encode(&entries);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text}"
    );
    let read = Cursor::parse(&text).expect("a cursor written here reads back");
    let names: Vec<&str> = topics.iter().map(|(n, _)| n.as_str()).collect();
    let ids: Vec<Option<u64>> = topics.iter().map(|(_, id)| Some(*id)).collect();
    assert_eq!(read.ids_for(&names), ids);
});

/// Distinct topics with ids, from the input's bytes.
fn made_up(mut bytes: &[u8]) -> Vec<(String, u64)> {
    let mut topics: Vec<(String, u64)> = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let len = usize::from(len % 8) + 1;
        if rest.len() < len + 8 || topics.len() == 64 {
            break;
        }
        let name: String = rest[..len]
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        let id = u64::from_le_bytes(rest[len..len + 8].try_into().expect("eight bytes"));
        bytes = &rest[len + 8..];
        if topics.iter().all(|(known, _)| *known != name) {
            topics.push((name, id));
        }
    }
    topics
}
