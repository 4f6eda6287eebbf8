//! Many EventSources in one page, counted: how many streams an engine opens at once to one
//! origin, and on how many connections. Over HTTP/2 that is the engine's own cap on
//! concurrent streams per connection (when the server allows more); over HTTP/1.1, with pages
//! of different sites, whether they share the browser's connections to one host.
//!
//! Connections are the server's connection ids, from each stream's `connected` event
//! (sselab's), so every engine is counted the same way, with or without network events.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Tab, eval};

/// How often the page is read while its streams settle.
const POLL: Duration = Duration::from_millis(250);

/// The shortest spell with no stream changing state that counts as settled.
const QUIET: Duration = Duration::from_secs(2);

/// The EventSources a page opened with [`Tab::open_event_sources`], read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageStreams {
    /// How many the page created.
    pub asked: usize,
    /// readyState 1: the server's response came.
    pub open: usize,
    /// readyState 0: waiting for a connection or a stream.
    pub connecting: usize,
    /// readyState 2: given up for good.
    pub closed: usize,
    /// The server's ids of the connections carrying the open streams, distinct, sorted.
    pub connection_ids: Vec<u64>,
    /// The most open streams on any one of those connections.
    pub busiest_connection: usize,
    /// The protocols the server names for the open streams (`HTTP/1.1`, `HTTP/2`, `HTTP/3`),
    /// distinct, sorted.
    pub protocols: Vec<String>,
}

impl PageStreams {
    pub fn connections(&self) -> usize {
        self.connection_ids.len()
    }
}

/// What the page keeps of its streams: each source, and the connection and protocol its
/// `connected` event named.
const READ: &str = "(() => { const s = window.sselabStreams || []; \
    const open = s.filter((e) => e.source.readyState === 1); \
    const per = new Map(); \
    for (const e of open) if (e.connection !== null) per.set(e.connection, (per.get(e.connection) || 0) + 1); \
    return { asked: s.length, open: open.length, \
      connecting: s.filter((e) => e.source.readyState === 0).length, \
      closed: s.filter((e) => e.source.readyState === 2).length, \
      connection_ids: [...per.keys()].sort((a, b) => a - b), \
      busiest_connection: Math.max(0, ...per.values()), \
      protocols: [...new Set(open.map((e) => e.protocol).filter((p) => p))].sort() }; })()";

impl Tab {
    /// Create `count` EventSources to `url` in this page, all at once, each remembering the
    /// connection id its `connected` event names.
    pub async fn open_event_sources(&self, url: &str, count: usize) -> anyhow::Result<()> {
        let script = format!(
            "window.sselabStreams = window.sselabStreams || []; \
             for (let i = 0; i < {count}; i++) {{ \
               const entry = {{ source: new EventSource({url}), connection: null, protocol: null }}; \
               entry.source.addEventListener('connected', (e) => {{ \
                 const info = JSON.parse(e.data); \
                 entry.connection = info.connection_id; entry.protocol = info.protocol; }}); \
               window.sselabStreams.push(entry); \
             }} true",
            url = serde_json::to_string(url)?
        );
        self.evaluate(&script).await?;
        Ok(())
    }

    /// The page's EventSources as they are now.
    pub async fn event_sources(&self) -> anyhow::Result<PageStreams> {
        eval(self, READ).await
    }

    /// Read the page's EventSources until they settle (every one open, or some open and none
    /// changing for two seconds or half the time taken so far, whichever is longer), for at
    /// most `within`; gives them and when they settled (`None`: read as they were).
    pub async fn settle_event_sources(
        &self,
        within: Duration,
    ) -> anyhow::Result<(PageStreams, Option<Duration>)> {
        let started = Instant::now();
        let mut last = self.event_sources().await?;
        let mut changed_at = started;
        loop {
            tokio::time::sleep(POLL).await;
            let now = Instant::now();
            let streams = self.event_sources().await?;
            if streams != last {
                last = streams.clone();
                changed_at = now;
            }
            let quiet = QUIET.max(changed_at.duration_since(started) / 2);
            let all_open = streams.asked > 0 && streams.open == streams.asked;
            let still = streams.open > 0 && now.duration_since(changed_at) >= quiet;
            if all_open || still {
                return Ok((streams, Some(now - started)));
            }
            if now - started >= within {
                return Ok((streams, None));
            }
        }
    }
}
