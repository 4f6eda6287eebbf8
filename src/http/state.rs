//! What every handler shares: the settings taken from the flags and the bound listeners,
//! and cheap handles to the stream registry, the pub/sub core, the counters and the
//! authorization rule.

use std::sync::Arc;
use std::time::Duration;

use tower_http::cors::AllowOrigin;

use super::lab_slots::LabSlots;
use super::metrics::ResponseCounters;
use crate::auth::Access;
use crate::pubsub::fanout::Fanout;
use crate::pubsub::hub::Hub;
use crate::pubsub::orders::Orders;
use crate::pubsub::tombstones::Tombstones;
use crate::server::origins::AllowedOrigins;
use crate::server::{ConnCounters, Ports};
use crate::sse::{RefusalAnswer, RetryPolicy, StreamRegistry};

/// What the handlers need to know from the flags and the bound listeners.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every stream's `retry:` comes from here ([`RetryPolicy::for_stream`]), and a refusal
    /// stream's ([`RetryPolicy::for_refusal`]).
    pub retry: RetryPolicy,
    /// How a refusal is answered to an EventSource (`--refusals`).
    pub refusals: RefusalAnswer,
    pub timeout: Option<Duration>,
    pub keepalive: Option<Duration>,
    pub tick: Duration,
    /// The demo clock ends at the next whole multiple of this on the wall clock.
    pub demo_period: Duration,
    pub ports: Ports,
    pub cors: AllowOrigin,
    /// Answers on the HTTPS listener carry `Alt-Svc: h3=":PORT"` (when HTTP/3 is on).
    pub alt_svc: bool,
    /// The certificate's SPKI hash (base64 SHA-256), for the Chromium switches the pages
    /// show; `None` when no listener uses TLS.
    pub spki_sha256: Option<String>,
    /// The host (as in a URL) a browser reaches the HTTP/3 listener at: its own address, not
    /// the name a page was asked for. QUIC forced on for `127.0.0.1:PORT` is not used for
    /// `localhost:PORT`, and `localhost` may resolve to `::1` first, where nothing listens.
    pub h3_host: Option<String>,
    /// Most topics one `/sse/topics?topic=…` stream may follow.
    pub max_topics_per_stream: usize,
}

/// Shared by every handler: a cheap clone of `Arc`s.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub streams: StreamRegistry,
    pub demo: Tombstones,
    pub hub: Hub,
    pub orders: Orders,
    pub connections: Arc<ConnCounters>,
    pub fanout: Fanout,
    pub responses: Arc<ResponseCounters>,
    /// Who may publish, subscribe and administer (open when no key is configured).
    pub access: Access,
    /// The lab's own stream caps (`/sse/hello?slots=N&group=G`).
    pub lab_slots: LabSlots,
}

/// Parse `--cors-origin`: `*` or a comma-separated list of origins ([`AllowedOrigins`], which
/// the listener's own answers use too).
pub fn cors_origin(text: &str) -> Result<AllowOrigin, String> {
    Ok(match AllowedOrigins::parse(text)? {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(origins) => AllowOrigin::list(origins),
    })
}
