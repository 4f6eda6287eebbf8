//! `sselab serve`: the flags become bound listeners, the shared state and one router, served
//! until SIGINT/SIGTERM. The one place that knows both the command line and the layers
//! under it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::access;
use crate::cli::{Refusals, SameId, ServeArgs};
use crate::http::{self, AppState, Settings};
use crate::pubsub::bus::Bus;
use crate::pubsub::fanout::{Exclusive, Fanout, Limits};
use crate::pubsub::hub::{Hub, HubConfig};
use crate::pubsub::orders::Orders;
use crate::pubsub::redis::RedisBus;
use crate::server;
use crate::server::admission;
use crate::server::certs::CertMaterial;
use crate::server::origins::AllowedOrigins;
use crate::server::{
    ConnLimits, ListenerConfig, ListenerKind, Listeners, ProtocolLimits, RefusalConfig,
};
use crate::sse::{RefusalAnswer, RetryPolicy, StreamRegistry};

/// `--max-connections` when not given: just under the open-file limit, where accepting would
/// start failing anyway (connections beyond it would only make axum-server pause every accept
/// loop). Where the limit cannot be read, the most the lab's largest runs need, five times over.
fn default_max_connections() -> usize {
    /// Without `/proc`: five times the lab's largest single-host run (10k connections).
    const WITHOUT_PROC: usize = 50_000;
    admission::open_file_limit().map_or(WITHOUT_PROC, |files| {
        files.saturating_sub(admission::SPARE_FILES).max(1) as usize
    })
}

/// Bound listeners, the certificate, and the shared state: everything but the serving.
#[derive(Debug)]
pub struct Server {
    listeners: Listeners,
    state: AppState,
    /// Cancelled when shutdown starts: streams end, order workers and the sweeper stop.
    shutdown: CancellationToken,
    grace: Duration,
    /// The banner's last line: whether auth is on, and with which key.
    auth_banner: String,
}

impl Server {
    /// Bind every listener that is not `off`, load or create the certificate, and build the
    /// state the handlers share.
    pub fn bind(args: &ServeArgs) -> anyhow::Result<Self> {
        let cors = http::cors_origin(&args.cors_origin)
            .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))?;
        let origins = AllowedOrigins::parse(&args.cors_origin)
            .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))?;
        let grace = Duration::from_secs(args.grace);
        // Before binding: a server that must not start opens no socket.
        let access = access::plan(
            &args.auth,
            &[
                ("--http", args.http),
                ("--https", args.https),
                ("--https-h1", args.https_h1),
                ("--h3", args.h3),
            ],
        )?;
        let listeners = Listeners::bind(&ListenerConfig {
            http: args.http,
            https: args.https,
            https_h1: args.https_h1,
            h3: args.h3,
            metrics: args.metrics,
            cert_dir: args.cert.cert_dir.clone(),
            extra_sans: args.cert.sans.clone(),
            regenerate_cert: args.regen_cert,
            protocol: ProtocolLimits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout),
                h2_max_streams: args.h2_max_streams,
                h3_max_streams: args.h3_max_streams,
                h2_max_pending_accept_reset_streams: args.limits.h2_max_pending_accept_reset_streams
                    as usize,
                h2_max_local_error_reset_streams: args.limits.h2_max_local_error_reset_streams
                    as usize,
                max_header_bytes: args.limits.max_header_bytes,
            },
            connections: ConnLimits {
                max_connections: args
                    .limits
                    .max_connections
                    .map_or_else(default_max_connections, |n| n as usize),
                max_connections_per_ip: args.limits.max_connections_per_ip as usize,
            },
            refusals: RefusalConfig {
                // --refusals status keeps the 503 for the connection caps too.
                event_streams: args.refusals == Refusals::Stream,
                retry_jitter: args.retry_jitter,
                origins,
            },
            grace,
        })?;
        let retry = RetryPolicy::new(
            args.retry,
            args.retry_jitter,
            Duration::from_secs(args.drain_spread),
        )
        .map_err(|e| anyhow::anyhow!("--retry-jitter: {e}"))?;
        let settings = Settings {
            retry,
            refusals: match args.refusals {
                Refusals::Stream => RefusalAnswer::Stream,
                Refusals::Status => RefusalAnswer::Status,
            },
            timeout: args.stream_timeout(),
            keepalive: args.keepalive_interval(),
            tick: Duration::from_millis(args.tick_ms),
            demo_period: Duration::from_secs(args.demo_period),
            ports: listeners.ports(),
            cors,
            alt_svc: !args.no_alt_svc,
            spki_sha256: listeners.certificate().map(|c| c.spki_sha256.clone()),
            h3_host: listeners
                .addr(ListenerKind::H3)
                .map(server::loopback_if_unspecified),
            max_topics_per_stream: usize::from(args.max_topics_per_stream),
        };
        let shutdown = CancellationToken::new();
        let fanout = Fanout::new(Limits {
            replay: args.replay,
            queue: args.queue as usize,
        });
        let linger = Duration::from_secs(args.session_linger);
        let bus = match &args.redis {
            None => Bus::InProcess(fanout.clone()),
            Some(url) => {
                let ca = match &args.redis_ca {
                    None => None,
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        anyhow::anyhow!("--redis-ca {}: cannot read it: {e}", path.display())
                    })?),
                };
                let redis =
                    RedisBus::new(url, ca, fanout.clone(), args.replay, linger, args.redis_min_replicas).map_err(|e| {
                        anyhow::anyhow!("--redis: {e} (give redis://host:port, rediss://… or redis+sentinel://host:port/MASTER)")
                    })?;
                Bus::Redis {
                    local: fanout.clone(),
                    redis,
                }
            }
        };
        let hub = Hub::new(
            bus.clone(),
            HubConfig {
                linger,
                max_sessions: args.max_sessions,
                max_topics: args.max_topics,
                same_id: match args.same_id {
                    SameId::Replace => Exclusive::Replace,
                    SameId::Reject => Exclusive::Reject,
                },
            },
        );
        let state = AppState {
            settings: Arc::new(settings),
            streams: StreamRegistry::new(args.max_streams, shutdown.clone()),
            demo: http::ended_demos(),
            hub,
            orders: Orders::new(bus, args.max_orders, linger, shutdown.clone()),
            connections: listeners.connections().clone(),
            fanout,
            responses: Arc::default(),
            access: access.access,
            lab_slots: Default::default(),
        };
        Ok(Self {
            listeners,
            state,
            shutdown,
            grace,
            auth_banner: access.banner,
        })
    }

    /// The real address of the `--metrics` listener, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listeners.metrics_addr()
    }

    /// The real address of a listener (after port 0 was resolved), if it is on.
    pub fn addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners.addr(kind)
    }

    pub fn certificate(&self) -> Option<&CertMaterial> {
        self.listeners.certificate()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// One line per listener with its URL, then the certificate fingerprint, then whether
    /// auth is on (`auth: off (loopback only)`, `auth: on (RS256 from --jwt-public-key …)`).
    pub fn banner(&self) -> String {
        format!("{}\n{}", self.listeners.banner(), self.auth_banner)
    }

    /// Serve until `signal` resolves, then end every stream, stop accepting and return
    /// within the grace period.
    pub async fn serve(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            listeners,
            state,
            shutdown,
            grace,
            ..
        } = self;
        // However serving ends, the workers below stop with it.
        let _stop_workers = shutdown.clone().drop_guard();
        state.hub.spawn_sweeper(shutdown.clone());
        let streams = state.streams.clone();
        let retry = state.settings.retry;
        let stopping = async move {
            signal.await;
            let open = streams.open_streams();
            tracing::info!(
                open_h1 = open.http1,
                open_h2 = open.http2,
                open_h3 = open.http3,
                grace_secs = grace.as_secs(),
                drain_spread_secs = retry.drain_spread().as_secs(),
                "shutting down: ending open streams (each told to reconnect after its retry plus \
                 a random part of the drain spread), no new connections"
            );
            // Ends the streams and cancels `shutdown`.
            streams.shut_down();
        };
        listeners
            .serve(http::app(state.clone()), http::metrics_app(state), stopping)
            .await
    }
}
