//! `/metrics` in the Prometheus text format, built at scrape time from the counters the
//! server keeps anyway (streams, connections, fan-out, responses) plus the process's RSS and
//! CPU time from `/proc`.
//!
//! Each scrape fills a fresh `prometheus::Registry`, so several servers in one process (the
//! tests) never share a global recorder, and the hot paths pay only for their atomics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::error::Refused;
use super::{AppError, AppState};
use crate::pubsub::redis::ShardStatus;
use crate::server::ListenerKind;
use crate::sse::{CloseReason, RefusalAnswer, RefusalReason};
use crate::sync::lock;

/// Answers by status code, and refusals by reason and by how they were answered, counted
/// by a middleware on every listener.
#[derive(Debug, Default)]
pub struct ResponseCounters {
    by_status: Mutex<BTreeMap<u16, u64>>,
    /// Per [`RefusalReason`], answered as a status (index 0) or a stream (1).
    refusals: [[AtomicU64; 2]; RefusalReason::ALL.len()],
    /// CORS preflights (answered before the routes, so not among the statuses).
    preflights: AtomicU64,
}

impl ResponseCounters {
    pub fn record(&self, status: u16) {
        *lock(&self.by_status).entry(status).or_default() += 1;
    }

    pub fn record_refusal(&self, reason: RefusalReason, answer: RefusalAnswer) {
        let column = usize::from(answer == RefusalAnswer::Stream);
        self.refusals[reason.index()][column].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far: reason, answer, count.
    pub fn refusals(&self) -> Vec<(RefusalReason, RefusalAnswer, u64)> {
        RefusalReason::ALL
            .iter()
            .flat_map(|&reason| {
                [RefusalAnswer::Status, RefusalAnswer::Stream].map(|answer| {
                    let column = usize::from(answer == RefusalAnswer::Stream);
                    let n = self.refusals[reason.index()][column].load(Ordering::Relaxed);
                    (reason, answer, n)
                })
            })
            .collect()
    }

    /// CORS preflights answered so far.
    pub fn preflights(&self) -> u64 {
        self.preflights.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> BTreeMap<u16, u64> {
        lock(&self.by_status).clone()
    }
}

/// The middleware that feeds [`ResponseCounters`].
pub async fn count_responses(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state.responses.record(response.status().as_u16());
    if let Some(refused) = response.extensions().get::<Refused>() {
        let answer = if response.status().is_success() {
            RefusalAnswer::Stream
        } else {
            RefusalAnswer::Status
        };
        state.responses.record_refusal(refused.reason, answer);
    }
    response
}

/// The middleware, outside the CORS layer, that counts the preflights it answers: whether a
/// browser asked before a request (a cross-origin `fetch` with `Last-Event-ID` does; an
/// EventSource's reconnect, measured in all three engines, does not).
pub async fn count_preflights(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        state.responses.preflights.fetch_add(1, Ordering::Relaxed);
    }
    next.run(request).await
}

/// Resident memory and CPU time of this process, from `/proc/self` (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
    pub threads: u64,
}

/// Linux reports CPU time in clock ticks of USER_HZ, which is 100 on every mainstream ABI.
const USER_HZ: f64 = 100.0;

pub fn process_stats() -> ProcessStats {
    let mut stats = ProcessStats::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let mut fields = line.split_whitespace();
            match (
                fields.next(),
                fields.next().and_then(|v| v.parse::<u64>().ok()),
            ) {
                (Some("VmRSS:"), Some(kib)) => stats.resident_bytes = kib * 1024,
                (Some("Threads:"), Some(n)) => stats.threads = n,
                _ => {}
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        if let Some(rest) = stat.rsplit(')').next() {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            stats.cpu_seconds = (ticks(11) + ticks(12)) / USER_HZ;
        }
    }
    stats
}

/// For metrics without labels.
const NO_LABELS: [&str; 0] = [];

/// Upper bounds for the queue depth histogram (events waiting per subscriber).
const QUEUE_BUCKETS: [f64; 10] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A cluster's shards, labelled by slot range and master: up, failovers seen, channels
/// subscribed again and caught up.
fn shard_metrics(registry: &Registry, shards: &[ShardStatus]) -> prometheus::Result<()> {
    if shards.is_empty() {
        return Ok(());
    }
    let labels = ["slots", "master"];
    let up = gauge(
        registry,
        "sselab_redis_shard_connected",
        "1 while the shard's master answers on the pub/sub connection, 0 while unreachable",
        &labels,
    )?;
    let counters = [
        (
            "sselab_redis_shard_failovers_total",
            "Times another master took the shard's slots",
        ),
        (
            "sselab_redis_shard_resubscribes_total",
            "Channels subscribed again on the shard (a failover, resharding or lost connection)",
        ),
        (
            "sselab_redis_shard_catch_ups_total",
            "Channels caught up from their stream after being subscribed again",
        ),
    ]
    .map(|(name, help)| counter(registry, name, help, &labels));
    let [failovers, resubscribes, catch_ups] = counters;
    let (failovers, resubscribes, catch_ups) = (failovers?, resubscribes?, catch_ups?);
    for shard in shards {
        let slots = format!("{}-{}", shard.slots.0, shard.slots.1);
        let values = [slots.as_str(), shard.master.as_str()];
        up.with_label_values(&values)
            .set(i64::from(shard.connected));
        failovers.with_label_values(&values).inc_by(shard.failovers);
        resubscribes
            .with_label_values(&values)
            .inc_by(shard.resubscribes);
        catch_ups.with_label_values(&values).inc_by(shard.catch_ups);
    }
    Ok(())
}

/// Requests that came through no listener (none in a running server) are left out while zero.
fn known(slot: &(&str, &str, u64)) -> bool {
    slot.0 != "unknown" || slot.2 > 0
}

/// The whole exposition, as text.
pub fn render(state: &AppState) -> prometheus::Result<String> {
    let registry = Registry::new();
    let streams = &state.streams;

    let open = gauge(
        &registry,
        "sselab_streams_open",
        "SSE streams open now",
        &["listener", "protocol"],
    )?;
    for (listener, protocol, n) in streams.open_by_slot().into_iter().filter(known) {
        open.with_label_values(&[listener, protocol]).set(n as i64);
    }
    let opened = counter(
        &registry,
        "sselab_streams_opened_total",
        "SSE streams opened",
        &["listener", "protocol"],
    )?;
    for (listener, protocol, n) in streams.opened_by_slot().into_iter().filter(known) {
        opened.with_label_values(&[listener, protocol]).inc_by(n);
    }
    let stats = streams.stats();
    let closed = counter(
        &registry,
        "sselab_streams_closed_total",
        "SSE streams closed, by reason",
        &["reason"],
    )?;
    for reason in CloseReason::ALL {
        let n = stats
            .close_reasons
            .get(reason.as_str())
            .copied()
            .unwrap_or(0);
        closed.with_label_values(&[reason.as_str()]).inc_by(n);
    }
    let resumed = counter(
        &registry,
        "sselab_reconnects_with_last_event_id_total",
        "Streams opened with a Last-Event-ID header",
        &[],
    )?;
    resumed
        .with_label_values(&NO_LABELS)
        .inc_by(stats.resumed_with_last_event_id);

    let (events, bytes) = streams.sent();
    counter(
        &registry,
        "sselab_events_sent_total",
        "SSE events written to streams",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .inc_by(events);
    counter(
        &registry,
        "sselab_bytes_sent_total",
        "Bytes written to SSE streams, keep-alives included",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .inc_by(bytes);

    let connections = gauge(
        &registry,
        "sselab_connections_open",
        "Connections open now",
        &["listener"],
    )?;
    let open_connections = state.connections.open();
    for kind in ListenerKind::ALL {
        connections
            .with_label_values(&[kind.name()])
            .set(open_connections[kind.index()] as i64);
    }
    counter(
        &registry,
        "sselab_connections_accepted_total",
        "Connections accepted",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .inc_by(state.connections.accepted());
    let refused = counter(
        &registry,
        "sselab_connections_refused_total",
        "Connections turned away for being over --max-connections or --max-connections-per-ip, by how they were answered: stream = 200 text/event-stream with retry: and event: refused, status = 503 + Retry-After, closed = no answer (TLS before the handshake, QUIC CONNECTION_REFUSED, no request in time)",
        &["listener", "reason", "answer"],
    )?;
    for (kind, refusal, answer, n) in state.connections.admission().refused() {
        refused
            .with_label_values(&[kind.name(), refusal.name(), answer.name()])
            .inc_by(n);
    }
    counter(
        &registry,
        "sselab_connections_closed_without_request_total",
        "Connections that closed before a whole request arrived (TLS handshake or headers not finished in time, or the client left)",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .inc_by(state.connections.closed_without_request());

    let fanout = state.fanout.totals();
    for (name, help, value) in [
        (
            "sselab_events_published_total",
            "Events published to sessions, topics and orders",
            fanout.published,
        ),
        (
            "sselab_replayed_events_total",
            "Events replayed after Last-Event-ID",
            fanout.replayed,
        ),
        (
            "sselab_resets_total",
            "event: reset sent because the replay ring had moved on",
            fanout.resets,
        ),
        (
            "sselab_slow_disconnects_total",
            "Subscribers cut because their queue was full",
            fanout.slow,
        ),
        (
            "sselab_cors_preflights_total",
            "CORS preflights (OPTIONS with Access-Control-Request-Method) answered",
            state.responses.preflights(),
        ),
    ] {
        counter(&registry, name, help, &[])?
            .with_label_values(&NO_LABELS)
            .inc_by(value);
    }

    let responses = counter(
        &registry,
        "sselab_http_responses_total",
        "HTTP answers by status code",
        &["status"],
    )?;
    for (status, n) in state.responses.snapshot() {
        responses
            .with_label_values(&[&status.to_string()])
            .inc_by(n);
    }

    let refusals = counter(
        &registry,
        "sselab_refusals_total",
        "Requests refused for now (a later try can pass), by reason and by how they were answered: status = 503 + Retry-After, stream = 200 text/event-stream with retry: and event: refused",
        &["reason", "answer"],
    )?;
    for (reason, answer, n) in state.responses.refusals() {
        refusals
            .with_label_values(&[reason.as_str(), answer.as_str()])
            .inc_by(n);
    }

    let hub = gauge(
        &registry,
        "sselab_hub_channels",
        "Hub sessions and topics held now",
        &["kind"],
    )?;
    hub.with_label_values(&["session"])
        .set(state.hub.session_count() as i64);
    hub.with_label_values(&["topic"])
        .set(state.hub.topic_count() as i64);
    gauge(
        &registry,
        "sselab_orders_running",
        "Orders being worked on",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .set(state.orders.running() as i64);

    if let Some(redis) = state.hub.redis_status() {
        gauge(
            &registry,
            "sselab_redis_connected",
            "1 while the pub/sub connection to Redis is up (live events flow), 0 while degraded",
            &[],
        )?
        .with_label_values(&NO_LABELS)
        .set(i64::from(redis.connected));
        for (name, help, value) in [
            (
                "sselab_redis_failures_total",
                "Publishes and subscribes refused (503) because Redis did not answer",
                redis.failures,
            ),
            (
                "sselab_redis_link_failures_total",
                "Pub/sub connections to Redis lost or refused",
                redis.link_failures,
            ),
            (
                "sselab_redis_reconnects_total",
                "Times the pub/sub connection to Redis came back (followed channels caught up)",
                redis.reconnects,
            ),
            (
                "sselab_redis_unconfirmed_total",
                "Publishes answered 503 because fewer replicas than --redis-min-replicas confirmed them in time",
                redis.unconfirmed,
            ),
        ] {
            counter(&registry, name, help, &[])?
                .with_label_values(&NO_LABELS)
                .inc_by(value);
        }
        shard_metrics(&registry, &redis.shards)?;
    }

    let depth = HistogramVec::new(
        HistogramOpts::new(
            "sselab_subscriber_queue_depth",
            "Events waiting in each subscriber's queue at scrape time",
        )
        .buckets(QUEUE_BUCKETS.to_vec()),
        &[],
    )?;
    registry.register(Box::new(depth.clone()))?;
    let depth = depth.with_label_values(&NO_LABELS);
    for queued in state.fanout.queue_depths() {
        depth.observe(queued as f64);
    }

    let process = process_stats();
    gauge(
        &registry,
        "process_resident_memory_bytes",
        "Resident memory of the sselab process",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .set(process.resident_bytes as i64);
    gauge(
        &registry,
        "process_threads",
        "Threads of the sselab process",
        &[],
    )?
    .with_label_values(&NO_LABELS)
    .set(process.threads as i64);
    let cpu = prometheus::GaugeVec::new(
        Opts::new(
            "process_cpu_seconds_total",
            "User and system CPU time of the sselab process",
        ),
        &[],
    )?;
    registry.register(Box::new(cpu.clone()))?;
    cpu.with_label_values(&NO_LABELS).set(process.cpu_seconds);

    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    String::from_utf8(text).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    match render(&state) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => AppError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render metrics: {e}"),
        )
        .into_response(),
    }
}
