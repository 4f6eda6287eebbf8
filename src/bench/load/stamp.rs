//! The events the bench publishes carry their send time and a sequence number,
//! `{"t":<unix ns>,"seq":n}`, so a receiving stream can tell latency, loss and duplicates.

use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The body of publish number `seq`, stamped now.
pub(super) fn stamp(seq: u64) -> String {
    format!("{{\"t\":{},\"seq\":{seq}}}", unix_nanos())
}

/// `{"t": <unix ns>, "seq": n}` from an event's data.
pub(super) fn stamped(data: &str) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        t: u64,
        seq: u64,
    }
    let stamp: Stamp = serde_json::from_str(data).ok()?;
    Some((stamp.t, stamp.seq))
}
