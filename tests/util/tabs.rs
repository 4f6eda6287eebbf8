//! Reading tabs that share a stream through sselab.js: the clock page's `window.sselab`, which
//! tab leads, and whether the ids a tab delivered go up by exactly 1.

use std::time::Duration;

use serde::Deserialize;
use sselab::browser::{LabBrowser, Tab, eval};

use super::browser::until;

/// What a clock tab says about itself (a subset of `window.sselab`).
#[derive(Debug, Deserialize)]
pub struct Clock {
    pub ids: Vec<u64>,
    /// `Date.now()` when each id arrived.
    pub times: Vec<f64>,
    pub share: String,
}

pub async fn clock(page: &Tab) -> Clock {
    eval(page, "window.sselab").await.expect("window.sselab")
}

/// `count` tabs of `url`, each ticking.
pub async fn open_clocks(browser: &LabBrowser, url: &str, count: usize) -> Vec<Tab> {
    let mut pages = Vec::with_capacity(count);
    for _ in 0..count {
        pages.push(browser.page(url).await.expect("a clock tab"));
    }
    for page in &pages {
        until(page, "window.sselab && window.sselab.events >= 2").await;
    }
    pages
}

/// The one tab holding the stream, once exactly one does.
pub async fn leader(pages: &[Tab]) -> usize {
    leader_by(pages, "window.sselab.leader").await
}

/// The one tab where `is_leader` holds, once exactly one does.
pub async fn leader_by(pages: &[Tab], is_leader: &str) -> usize {
    let mut found = Vec::new();
    for _ in 0..200 {
        found.clear();
        for (i, page) in pages.iter().enumerate() {
            if eval::<bool>(page, is_leader).await.unwrap_or(false) {
                found.push(i);
            }
        }
        if found.len() == 1 {
            return found[0];
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected one tab where {is_leader}, found {found:?}");
}

/// Every id is the previous one plus 1: nothing lost, nothing repeated.
pub fn assert_consecutive(ids: &[u64], tab: &str) {
    assert!(ids.len() >= 2, "{tab}: too few ids {ids:?}");
    if let Some(w) = ids.windows(2).find(|w| w[1] != w[0] + 1) {
        panic!("{tab}: {} followed {} in {ids:?}", w[1], w[0]);
    }
}

/// The longest wait between two events in a tab, in ms (a handover shows as one).
pub fn longest_quiet(clock: &Clock) -> f64 {
    clock
        .times
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max)
}

/// How long a tab waited between id `last` (the old leader's last) and the next one, in ms.
pub fn handover_gap(clock: &Clock, last: u64) -> Option<f64> {
    let at = clock.ids.iter().position(|id| *id == last)?;
    Some(clock.times.get(at + 1)? - clock.times[at])
}

/// Wait until every tab has an id above `above`: the stream flows again everywhere.
pub async fn all_past(pages: &[Tab], above: u64) {
    for page in pages {
        until(page, &format!("window.sselab.ids.at(-1) > {above}")).await;
    }
}

/// A tab that follows topic `handover` through sselab.js (a plain page, so the tab holds no
/// other stream): `window.topic.ids` are the ids it delivered.
pub async fn topic_tab(browser: &LabBrowser, base: &str) -> Tab {
    let page = browser.page(&format!("{base}/proto")).await.expect("a tab");
    let load = "fetch('/sselab.js').then(r => r.text()).then(code => (0, eval)(code)); true";
    page.evaluate(load).await.expect("load sselab.js");
    until(&page, "window.SharedEventSource").await;
    let follow = "window.topic = { ids: [] }; \
        window.topicSource = new SharedEventSource('/sse/topics/handover', { share: 'leader' }); \
        window.topicSource.onmessage = (e) => window.topic.ids.push(Number(e.lastEventId)); true";
    page.evaluate(follow).await.expect("follow the topic");
    page
}

pub async fn topic_leader(pages: &[Tab]) -> usize {
    leader_by(pages, "window.topicSource.isLeader").await
}

/// Per id a follower got, how long after the leader got it, in ms, sorted.
pub fn relay_latencies(lead: &Clock, follower: &Clock, from_id: u64) -> Vec<f64> {
    let mut latencies: Vec<f64> = follower
        .ids
        .iter()
        .zip(&follower.times)
        .filter(|(id, _)| **id >= from_id)
        .filter_map(|(id, at)| {
            let i = lead.ids.iter().position(|l| l == id)?;
            Some(at - lead.times[i])
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

pub fn median_and_max(values: &[f64]) -> (f64, f64) {
    (values[values.len() / 2], values[values.len() - 1])
}
