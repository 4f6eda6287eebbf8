//! Binding and serving the three listeners, and shutting them all down together.
//!
//! One router ([`crate::app::app`]) is served on up to three sockets that differ only in
//! transport: plain TCP (HTTP/1.1, or HTTP/2 with prior knowledge), TLS offering h2 and
//! http/1.1, and TLS offering http/1.1 only. Sockets are bound before serving so a caller (a
//! test, or `main`) learns the real ports and a port in use fails fast with its address.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::{Control, Handle};
use socket2::{Domain, Socket, Type};
use tokio::task::JoinSet;

use crate::app::{self, AppState, Ports, Settings};
use crate::certs::{self, CertMaterial, CertRequest};
use crate::config::{Bind, SameId, ServeArgs};
use crate::conn::{ConnAcceptor, ConnCounters, ListenerKind};
use crate::fanout::{Exclusive, Fanout, Limits};
use crate::hub::{Hub, HubConfig};
use crate::orders::Orders;

use crate::streams::StreamRegistry;

/// Pending connections the kernel queues per listener; the lab opens thousands at once.
const LISTEN_BACKLOG: i32 = 4096;

#[derive(Debug)]
struct BoundListener {
    kind: ListenerKind,
    socket: std::net::TcpListener,
    addr: SocketAddr,
}

/// Bound sockets, the certificate, and the shared state: everything but the serving.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<BoundListener>,
    /// `--metrics`: a plain listener serving only /metrics.
    metrics: Option<(std::net::TcpListener, SocketAddr)>,
    certificate: Option<CertMaterial>,
    state: AppState,
    header_read_timeout: Duration,
    h2_max_streams: u32,
    grace: Duration,
}

impl Server {
    /// Bind every listener that is not `off` and load or create the certificate.
    pub fn bind(args: &ServeArgs) -> anyhow::Result<Self> {
        let cors = app::cors_origin(&args.cors_origin)
            .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))?;
        let wanted = [
            (ListenerKind::Http, args.http, "--http"),
            (ListenerKind::Https, args.https, "--https"),
            (ListenerKind::HttpsH1, args.https_h1, "--https-h1"),
        ];
        let mut listeners = Vec::new();
        for (kind, bind, flag) in wanted {
            if let Bind::At(addr) = bind {
                let socket = listen(addr).with_context(|| {
                    format!("cannot listen on {addr} ({flag}); is another server using it? Pick another address or `{flag} off`")
                })?;
                let addr = socket.local_addr()?;
                listeners.push(BoundListener { kind, socket, addr });
            }
        }
        let metrics = match args.metrics {
            Bind::Off => None,
            Bind::At(addr) => {
                let socket = listen(addr).with_context(|| {
                    format!("cannot listen on {addr} (--metrics); pick another address or `--metrics off`")
                })?;
                let addr = socket.local_addr()?;
                Some((socket, addr))
            }
        };
        if listeners.is_empty() {
            anyhow::bail!(
                "every listener is off: turn on at least one of --http, --https, --https-h1"
            );
        }
        let needs_tls = listeners.iter().any(|l| l.kind != ListenerKind::Http);
        let certificate = needs_tls
            .then(|| {
                certs::load_or_generate(&CertRequest {
                    dir: &args.cert.cert_dir,
                    extra_sans: &args.cert.sans,
                    regenerate: args.regen_cert,
                })
            })
            .transpose()?;

        let port_of = |kind| {
            listeners
                .iter()
                .find(|l| l.kind == kind)
                .map(|l| l.addr.port())
        };
        let settings = Settings {
            retry_ms: args.retry,
            timeout: args.stream_timeout(),
            keepalive: args.keepalive_interval(),
            tick: Duration::from_millis(args.tick_ms),
            demo_period: Duration::from_secs(args.demo_period),
            ports: Ports {
                http: port_of(ListenerKind::Http),
                https: port_of(ListenerKind::Https),
                https_h1: port_of(ListenerKind::HttpsH1),
            },
            cors,
        };
        let fanout = Fanout::new(Limits {
            replay: args.replay,
            queue: args.queue as usize,
        });
        let linger = Duration::from_secs(args.session_linger);
        let hub = Hub::new(
            fanout.clone(),
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
            streams: StreamRegistry::new(args.max_streams),
            demo: crate::demo::ended_demos(),
            hub,
            orders: Orders::new(fanout.clone(), args.max_orders, linger),
            connections: Arc::new(ConnCounters::default()),
            fanout,
            responses: Arc::default(),
        };
        Ok(Self {
            listeners,
            metrics,
            certificate,
            state,
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            h2_max_streams: args.h2_max_streams,
            grace: Duration::from_secs(args.grace),
        })
    }

    /// The real address of the `--metrics` listener, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The real address of a listener (after port 0 was resolved), if it is on.
    pub fn addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.addr)
    }

    pub fn certificate(&self) -> Option<&CertMaterial> {
        self.certificate.as_ref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// One line per listener with its URL, then the certificate fingerprint.
    pub fn banner(&self) -> String {
        let mut lines = Vec::new();
        for listener in &self.listeners {
            let what = match listener.kind {
                ListenerKind::Http => "plain HTTP/1.1 (+ HTTP/2 prior knowledge)",
                ListenerKind::Https => "TLS, ALPN h2 + http/1.1",
                ListenerKind::HttpsH1 => "TLS, ALPN http/1.1 only (the control)",
            };
            lines.push(format!(
                "listening {:<8} {:<28} {}",
                listener.kind.name(),
                url_for(listener.kind, listener.addr),
                what
            ));
        }
        if let Some((_, addr)) = &self.metrics {
            lines.push(format!(
                "listening {:<8} {}metrics",
                "metrics",
                url_for(ListenerKind::Http, *addr)
            ));
        }
        if let Some(cert) = &self.certificate {
            lines.push(format!(
                "certificate {} sha256 {}",
                cert.cert_path.display(),
                cert.fingerprint
            ));
            lines.push(format!(
                "trust it: curl --cacert {} …  |  chromium --ignore-certificate-errors-spki-list={}",
                cert.cert_path.display(),
                cert.spki_sha256
            ));
        }
        lines.join("\n")
    }

    /// Serve until `shutdown` resolves, then end every stream, stop accepting and return
    /// within the grace period.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let control = Control::new();
        let stop_sweeper = tokio_util::sync::CancellationToken::new();
        self.state.hub.spawn_sweeper(stop_sweeper.clone());
        let _stop_sweeper = stop_sweeper.drop_guard();
        let mut servers = JoinSet::new();
        for listener in self.listeners {
            let acceptor = ConnAcceptor::new(listener.kind, self.state.connections.clone());
            let make_service = app::app(self.state.clone()).into_make_service();
            let server = axum_server::from_tcp(listener.socket)?
                .handle(Handle::with_control(control.clone()))
                .first_request_timeout(self.header_read_timeout);
            let server = tune(server, self.header_read_timeout, self.h2_max_streams);
            let kind = listener.kind;
            match kind {
                ListenerKind::Http => {
                    servers.spawn(server.acceptor(acceptor).serve(make_service));
                }
                ListenerKind::Https | ListenerKind::HttpsH1 => {
                    let certificate = self
                        .certificate
                        .as_ref()
                        .context("TLS listener without a certificate")?;
                    let tls = RustlsAcceptor::new(tls_config(certificate, kind)?)
                        .handshake_timeout(self.header_read_timeout)
                        .acceptor(acceptor);
                    let server = server.acceptor(tls);
                    let server = if kind == ListenerKind::HttpsH1 {
                        server.http1_only()
                    } else {
                        server
                    };
                    servers.spawn(server.serve(make_service));
                }
            }
        }

        if let Some((socket, _)) = self.metrics {
            let router = axum::Router::new()
                .route("/metrics", axum::routing::get(crate::metrics::metrics))
                .with_state(self.state.clone());
            let server = axum_server::from_tcp(socket)?
                .handle(Handle::with_control(control.clone()))
                .first_request_timeout(self.header_read_timeout);
            servers.spawn(server.serve(router.into_make_service()));
        }

        tokio::select! {
            _ = shutdown => {}
            Some(result) = servers.join_next() => {
                // A listener stopped on its own: that is an error, and the rest stop too.
                let reason = match result {
                    Ok(Ok(())) => anyhow::anyhow!("a listener stopped unexpectedly"),
                    Ok(Err(e)) => anyhow::Error::new(e).context("a listener failed"),
                    Err(e) => anyhow::Error::new(e).context("a listener task failed"),
                };
                control.shutdown();
                return Err(reason);
            }
        }

        let open = self.state.streams.open_streams();
        tracing::info!(
            open_h1 = open.http1,
            open_h2 = open.http2,
            grace_secs = self.grace.as_secs(),
            "shutting down: ending open streams, no new connections"
        );
        self.state.streams.shut_down();
        control.graceful_shutdown(Some(self.grace));
        // axum-server cuts what is left at the grace deadline; the extra second only guards
        // against a listener task that does not return.
        let all_stopped = async { while servers.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace + Duration::from_secs(1), all_stopped)
            .await
            .is_err()
        {
            tracing::warn!("listeners did not stop within the grace period; exiting anyway");
        }
        tracing::info!(connections_left = control.connection_count(), "stopped");
        Ok(())
    }
}

/// Timeouts and HTTP/2 settings shared by all three listeners.
fn tune<A>(
    mut server: axum_server::Server<SocketAddr, A>,
    header_read_timeout: Duration,
    h2_max_streams: u32,
) -> axum_server::Server<SocketAddr, A> {
    let builder = server.http_builder();
    builder
        .http1()
        .header_read_timeout(Some(header_read_timeout));
    builder.http2().max_concurrent_streams(h2_max_streams);
    server
}

fn tls_config(certificate: &CertMaterial, kind: ListenerKind) -> anyhow::Result<RustlsConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificate.chain.clone(), certificate.key.clone_key())
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate; start with --regen-cert to replace them",
                certificate.cert_path.display(),
                certificate.key_path.display()
            )
        })?;
    config.alpn_protocols = match kind {
        ListenerKind::Https => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// A listening socket with a deep backlog and SO_REUSEADDR (a restart need not wait out
/// TIME_WAIT). Two live servers still cannot share a port.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// The URL a person opens for a listener; an unspecified address is reached via loopback.
pub fn url_for(kind: ListenerKind, addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("{}://{}:{}/", kind.scheme(), host, addr.port())
}
