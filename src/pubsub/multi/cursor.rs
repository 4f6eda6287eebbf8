//! The `id:` of a stream of many topics: one cursor that holds every topic's last delivered
//! event id, so a reconnect's `Last-Event-ID` resumes each topic from its own.
//!
//! Opaque to clients, and compact, in base64url (no padding: every character is
//! CORS-safelisted, so only its length can ever make a browser preflight a reconnect):
//!
//! ```text
//! version (1 byte, = 1) · base (varint) · per topic, in name order: tag (2 bytes) · id − base (varint)
//! ```
//!
//! Varints are unsigned LEB128. `base` is the smallest id, so topics numbered from the same
//! clock (Redis starts a numbering at its clock in microseconds) cost a few bytes each rather
//! than eight. A topic is known by its tag — 16 bits of the FNV-1a hash of its name — and
//! tags that collide are told apart by name order: the k-th topic (by name) with a tag takes
//! the k-th entry with that tag. A reconnect to the same URL thus resumes every topic
//! exactly. A URL that dropped one topic and added another with the same tag (1 in 65 536
//! per such pair) would start the new one from the old one's id: the next frame for it is
//! then a `reset` or part of its history, never a lost event of a topic it followed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The only version written and read.
const VERSION: u8 = 1;
/// Most entries a cursor may hold: a bound on the work a malformed one can cause.
pub const MAX_ENTRIES: usize = 256;
/// The longest varint of a `u64`.
const MAX_VARINT: usize = 10;

/// Why a text is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCursor(pub &'static str);

impl std::fmt::Display for BadCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A cursor read from a `Last-Event-ID`: (tag, id) in the name order of the stream that
/// wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    entries: Vec<(u16, u64)>,
}

/// A topic's tag: 16 bits of FNV-1a (64-bit) over its name, stable across nodes and versions.
pub fn tag(name: &str) -> u16 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = name.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    (hash ^ (hash >> 16) ^ (hash >> 32) ^ (hash >> 48)) as u16
}

/// The cursor text for `entries` — (tag, id) in name order — written into `out`.
pub fn encode_into(entries: &[(u16, u64)], out: &mut String) {
    let base = entries.iter().map(|(_, id)| *id).min().unwrap_or(0);
    let mut bytes = Vec::with_capacity(1 + MAX_VARINT + entries.len() * 4);
    bytes.push(VERSION);
    put_varint(&mut bytes, base);
    for (tag, id) in entries {
        bytes.extend_from_slice(&tag.to_be_bytes());
        put_varint(&mut bytes, id - base);
    }
    URL_SAFE_NO_PAD.encode_string(&bytes, out);
}

/// [`encode_into`] a new string.
pub fn encode(entries: &[(u16, u64)]) -> String {
    let mut text = String::new();
    encode_into(entries, &mut text);
    text
}

impl Cursor {
    /// Read a cursor; anything else — another version, a plain number, cut short, trailing
    /// bytes, an id past `u64` — is refused with the reason.
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        let text = text.trim();
        // Past this length it would hold more than MAX_ENTRIES entries anyway.
        if text.len() > (MAX_ENTRIES * (2 + MAX_VARINT) + MAX_VARINT + 1) * 4 / 3 + 4 {
            return Err(BadCursor("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| BadCursor("not base64url"))?;
        let (&version, mut rest) = bytes.split_first().ok_or(BadCursor("empty"))?;
        if version != VERSION {
            return Err(BadCursor("unknown version"));
        }
        let base = take_varint(&mut rest)?;
        let mut entries = Vec::new();
        while !rest.is_empty() {
            if entries.len() == MAX_ENTRIES {
                return Err(BadCursor("too many topics"));
            }
            let (tag, after) = rest.split_at_checked(2).ok_or(BadCursor("cut short"))?;
            rest = after;
            let delta = take_varint(&mut rest)?;
            let id = base
                .checked_add(delta)
                .ok_or(BadCursor("an id past 2^64"))?;
            entries.push((u16::from_be_bytes([tag[0], tag[1]]), id));
        }
        if entries.is_empty() {
            return Err(BadCursor("no topic"));
        }
        Ok(Self { entries })
    }

    /// Each of `names`' id in this cursor, `None` for a topic it does not hold (added to the
    /// URL since): the k-th name (by name order) with a tag takes the k-th entry with it.
    pub fn ids_for(&self, names: &[&str]) -> Vec<Option<u64>> {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&at| names[at]);
        let mut ids = vec![None; names.len()];
        // Entries of each tag not taken yet, in order.
        let mut taken = vec![false; self.entries.len()];
        for at in order {
            let tag = tag(names[at]);
            let entry = (0..self.entries.len()).find(|&e| !taken[e] && self.entries[e].0 == tag);
            if let Some(entry) = entry {
                taken[entry] = true;
                ids[at] = Some(self.entries[entry].1);
            }
        }
        ids
    }

    /// (tag, id) of each topic it holds, in the name order of the stream that wrote it.
    pub fn entries(&self) -> &[(u16, u64)] {
        &self.entries
    }

    /// How many topics it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, BadCursor> {
    let mut value: u64 = 0;
    for (at, &byte) in bytes.iter().enumerate().take(MAX_VARINT) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * at as u32;
        if shift == 63 && bits > 1 {
            return Err(BadCursor("an id past 2^64"));
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            *bytes = &bytes[at + 1..];
            return Ok(value);
        }
    }
    Err(BadCursor("cut short"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str], ids: &[u64]) -> Vec<(u16, u64)> {
        let mut pairs: Vec<(&str, u64)> = names.iter().copied().zip(ids.iter().copied()).collect();
        pairs.sort();
        pairs
            .into_iter()
            .map(|(name, id)| (tag(name), id))
            .collect()
    }

    #[test]
    fn a_cursor_reads_back_every_topics_id_in_any_url_order() {
        let text = encode(&entries(&["b", "a", "c"], &[7, 0, 12]));
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let cursor = Cursor::parse(&text).expect("a cursor");
        assert_eq!(
            cursor.ids_for(&["a", "b", "c"]),
            [Some(0), Some(7), Some(12)]
        );
        assert_eq!(
            cursor.ids_for(&["c", "a", "b"]),
            [Some(12), Some(0), Some(7)]
        );
        // Added since: no id (it starts live); removed since: ignored.
        assert_eq!(cursor.ids_for(&["c", "new"]), [Some(12), None]);
    }

    #[test]
    fn colliding_tags_are_told_apart_by_name_order() {
        // Find two names with one tag.
        let mut seen = std::collections::HashMap::new();
        let (x, y) = (0..)
            .map(|n| format!("t{n}"))
            .find_map(|name| {
                seen.insert(tag(&name), name.clone())
                    .map(|other| (other, name))
            })
            .expect("a collision among 2^16+1 names");
        let names = [x.as_str(), y.as_str(), "z"];
        let cursor = Cursor::parse(&encode(&entries(&names, &[1, 2, 3]))).expect("a cursor");
        assert_eq!(cursor.ids_for(&names), [Some(1), Some(2), Some(3)]);
        assert_eq!(
            cursor.ids_for(&[y.as_str(), x.as_str()]),
            [Some(2), Some(1)]
        );
    }

    #[test]
    fn thirty_two_topics_with_redis_sized_ids_stay_compact() {
        // Redis numbers each topic from its clock in microseconds (about 1.8e15), here from
        // topics made within an hour of each other, then some events each.
        let names: Vec<String> = (0..32).map(|n| format!("feed-{n}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ids: Vec<u64> = (0..32u64)
            .map(|n| 1_796_000_000_000_000 + n * 110_000_000 + n * 37)
            .collect();
        let text = encode(&entries(&names, &ids));
        eprintln!(
            "32 topics, Redis ids within an hour: {} characters",
            text.len()
        );
        assert!(text.len() <= 320, "{} characters: {text}", text.len());
        let cursor = Cursor::parse(&text).expect("a cursor");
        let back: Vec<u64> = cursor.ids_for(&names).into_iter().flatten().collect();
        assert_eq!(back, ids);
        // Two topics in one process: a dozen characters.
        let small = encode(&entries(&["a", "b"], &[41, 3]));
        assert!(small.len() <= 12, "{small}");
    }

    #[test]
    fn anything_but_a_cursor_is_refused_with_its_reason() {
        let good = encode(&[(1, 5)]);
        for (text, reason) in [
            ("", "empty"),
            ("42", "not base64url"),
            ("4242", "unknown version"),
            ("a:b", "not base64url"),
            (&URL_SAFE_NO_PAD.encode([1u8, 5, 0]), "cut short"),
            (&URL_SAFE_NO_PAD.encode([1u8, 0x80]), "cut short"),
            (&URL_SAFE_NO_PAD.encode([1u8, 5]), "no topic"),
            (
                &URL_SAFE_NO_PAD.encode([2u8, 5, 0, 1, 0]),
                "unknown version",
            ),
            (
                &URL_SAFE_NO_PAD.encode([
                    1u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ]),
                "an id past 2^64",
            ),
        ] {
            assert_eq!(Cursor::parse(text), Err(BadCursor(reason)), "{text:?}");
        }
        let mut past = vec![1u8];
        put_varint(&mut past, u64::MAX);
        past.extend([0, 1]);
        put_varint(&mut past, 1);
        assert_eq!(
            Cursor::parse(&URL_SAFE_NO_PAD.encode(past)),
            Err(BadCursor("an id past 2^64"))
        );
        assert_eq!(
            Cursor::parse(&"A".repeat(20_000)),
            Err(BadCursor("too long"))
        );
        assert_eq!(Cursor::parse(&good).map(|c| c.len()), Ok(1));
    }
}
