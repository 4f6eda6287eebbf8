//! The run's waits, each bounded: until the streams are established, then the measurement
//! window (publishing in fan-out mode), then the drain for the last events.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::args::{LoadArgs, LoadPlan};
use super::publish::{PublishReport, publish};
use super::tally::Tally;

/// How often a wait looks at the tally.
const POLL: Duration = Duration::from_millis(20);

/// Wait until every one of `streams` answered (established or failed), or `deadline`.
pub(super) async fn until_established(tally: &Tally, streams: u64, deadline: Instant) {
    while tally.settled() < streams && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// What the measurement window saw.
pub(super) struct Window {
    pub measured: Duration,
    /// Events received by all streams in the window.
    pub events: u64,
    pub publish: Option<PublishReport>,
}

/// Count events from now on for `--duration`, publishing in fan-out mode, then give the
/// last published events up to `--drain` to arrive.
pub(super) async fn window(
    args: &LoadArgs,
    load: &LoadPlan,
    tally: &Tally,
) -> anyhow::Result<Window> {
    let plan = &load.streams;
    let events_before = tally.events.load(Ordering::Relaxed);
    tally.measuring.cancel();
    let start = Instant::now();
    let publish = match &args.publish_url {
        Some(url) => {
            let urls = &load.publish_urls;
            Some(publish(url, urls, args, plan.duration, plan.connect_timeout).await?)
        }
        None => {
            tokio::time::sleep(plan.duration).await;
            None
        }
    };
    if let Some(publish) = &publish {
        until_drained(tally, publish.sent, load.drain).await;
    }
    Ok(Window {
        measured: start.elapsed(),
        events: tally.events.load(Ordering::Relaxed) - events_before,
        publish,
    })
}

/// Until every established stream has every sent sequence number, or `drain` passed.
async fn until_drained(tally: &Tally, sent: u64, drain: Duration) {
    let expected = sent * tally.established.load(Ordering::Relaxed);
    let until = Instant::now() + drain;
    while tally.unique_seqs.load(Ordering::Relaxed) < expected && Instant::now() < until {
        tokio::time::sleep(POLL).await;
    }
}
