//! The server plumbing under every route: binding the four listeners (and `--metrics`),
//! loading the certificate, serving a router on each, and shutting them all down together.
//! Sockets, TLS and connections only — no routes and no flags: the caller hands in the
//! routers and a future that says when to stop.
//!
//! One router is served on up to four sockets that differ only in transport: plain TCP
//! (HTTP/1.1, or HTTP/2 with prior knowledge), TLS offering h2 and http/1.1, TLS offering
//! http/1.1 only, and QUIC on UDP (HTTP/3, in [`h3`]). Sockets are bound before serving so a caller (a test, or `main`) learns the
//! real ports and a port in use fails fast with its address.

pub mod admission;
pub mod certs;
pub mod chromium_switches;
pub mod conn;
pub mod h3;
mod kind;
pub mod limits;
pub mod origins;
mod preface;
pub mod quic_hint;
pub mod refusal;
pub mod shutdown;
pub mod tls;

use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum_server::tls_rustls::RustlsAcceptor;
use axum_server::{Control, Handle};
use socket2::{Domain, Socket, Type};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use admission::ConnLimits;
use certs::{CertMaterial, CertRequest};
pub use conn::{ConnAcceptor, ConnCounters, RequestInfo};
use h3::{H3Listener, H3Socket};
pub use kind::{ListenerKind, Ports};
pub use limits::ProtocolLimits;
use preface::PeekAcceptor;
pub use refusal::RefusalConfig;

/// Pending connections the kernel queues per listener; the lab opens thousands at once.
const LISTEN_BACKLOG: i32 = 4096;

/// A listener address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    Off,
    At(SocketAddr),
}

impl FromStr for Bind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Bind::Off);
        }
        if let Ok(addr) = text.parse() {
            return Ok(Bind::At(addr));
        }
        // Host names such as localhost:8080 resolve to their first address.
        text.to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .map(Bind::At)
            .ok_or_else(|| format!("`{text}` is not HOST:PORT (like 127.0.0.1:8080) or `off`"))
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Off => f.write_str("off"),
            Bind::At(addr) => addr.fmt(f),
        }
    }
}

/// Where to listen and how connections are treated.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub http: Bind,
    pub https: Bind,
    pub https_h1: Bind,
    /// The HTTP/3 listener's UDP address.
    pub h3: Bind,
    /// A plain listener serving only the metrics router.
    pub metrics: Bind,
    pub cert_dir: PathBuf,
    pub extra_sans: Vec<String>,
    pub regenerate_cert: bool,
    /// What one connection may make the server do (timeouts, HTTP/2 resets, header size).
    pub protocol: ProtocolLimits,
    /// How many connections may be open at once, in all and per peer address.
    pub connections: ConnLimits,
    /// How a connection over those caps is answered.
    pub refusals: RefusalConfig,
    /// How long shutdown may take before open connections are cut.
    pub grace: Duration,
}

#[derive(Debug)]
struct BoundListener {
    kind: ListenerKind,
    socket: std::net::TcpListener,
    addr: SocketAddr,
}

/// Bound sockets and the certificate: everything but the serving.
#[derive(Debug)]
pub struct Listeners {
    listeners: Vec<BoundListener>,
    /// `--h3`: the UDP socket HTTP/3 is served on.
    h3: Option<H3Socket>,
    /// `--metrics`: a plain listener serving only the metrics router.
    metrics: Option<(std::net::TcpListener, SocketAddr)>,
    certificate: Option<CertMaterial>,
    connections: Arc<ConnCounters>,
    protocol: ProtocolLimits,
    grace: Duration,
}

impl Listeners {
    /// Bind every listener that is not `off` and load or create the certificate.
    pub fn bind(config: &ListenerConfig) -> anyhow::Result<Self> {
        let wanted = [
            (ListenerKind::Http, config.http, "--http"),
            (ListenerKind::Https, config.https, "--https"),
            (ListenerKind::HttpsH1, config.https_h1, "--https-h1"),
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
        let h3 = match config.h3 {
            Bind::Off => None,
            Bind::At(addr) => Some(H3Socket::bind(addr).with_context(|| {
                format!("cannot listen on UDP {addr} (--h3); is another server using it? Pick another address or `--h3 off`")
            })?),
        };
        let metrics = match config.metrics {
            Bind::Off => None,
            Bind::At(addr) => {
                let socket = listen(addr).with_context(|| {
                    format!("cannot listen on {addr} (--metrics); pick another address or `--metrics off`")
                })?;
                let addr = socket.local_addr()?;
                Some((socket, addr))
            }
        };
        if listeners.is_empty() && h3.is_none() {
            anyhow::bail!(
                "every listener is off: turn on at least one of --http, --https, --https-h1, --h3"
            );
        }
        warn_if_files_run_out_first(config.connections);
        let needs_tls = h3.is_some() || listeners.iter().any(|l| l.kind != ListenerKind::Http);
        let certificate = needs_tls
            .then(|| {
                certs::load_or_generate(&CertRequest {
                    dir: &config.cert_dir,
                    extra_sans: &config.extra_sans,
                    regenerate: config.regenerate_cert,
                })
            })
            .transpose()?;
        Ok(Self {
            listeners,
            h3,
            metrics,
            certificate,
            connections: Arc::new(ConnCounters::new(
                config.connections,
                config.refusals.clone(),
            )),
            protocol: config.protocol,
            grace: config.grace,
        })
    }

    /// The real address of the `--metrics` listener, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The real address of a listener (after port 0 was resolved), if it is on.
    pub fn addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        if kind == ListenerKind::H3 {
            return self.h3.as_ref().map(H3Socket::addr);
        }
        self.listeners
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.addr)
    }

    /// The bound port of each listener that is on.
    pub fn ports(&self) -> Ports {
        let port = |kind| self.addr(kind).map(|addr| addr.port());
        Ports {
            http: port(ListenerKind::Http),
            https: port(ListenerKind::Https),
            https_h1: port(ListenerKind::HttpsH1),
            h3: port(ListenerKind::H3),
        }
    }

    pub fn certificate(&self) -> Option<&CertMaterial> {
        self.certificate.as_ref()
    }

    /// Connections accepted and open per listener, shared by every acceptor.
    pub fn connections(&self) -> &Arc<ConnCounters> {
        &self.connections
    }

    /// One line per listener with its URL, then the certificate fingerprint and how to trust
    /// it (and to reach HTTP/3 from Chromium), then the caps.
    pub fn banner(&self) -> String {
        let mut lines = Vec::new();
        for listener in &self.listeners {
            lines.push(format!(
                "listening {:<8} {:<28} {}",
                listener.kind.name(),
                url_for(listener.kind, listener.addr),
                listener.kind.transport()
            ));
        }
        if let Some(h3) = &self.h3 {
            lines.push(format!(
                "listening {:<8} {:<28} {}",
                ListenerKind::H3.name(),
                url_for(ListenerKind::H3, h3.addr()),
                ListenerKind::H3.transport()
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
            if let Some(h3) = &self.h3 {
                lines.push(format!(
                    "HTTP/3 in Chromium: {}",
                    quic_hint::chromium_command(
                        &loopback_if_unspecified(h3.addr()),
                        h3.addr().port(),
                        Some(&cert.spki_sha256)
                    )
                ));
            }
        }
        let caps = self.connections.admission().limits();
        lines.push(format!(
            "limits: {} connections ({} per address), request headers of {} bytes within {} s",
            caps.max_connections,
            caps.max_connections_per_ip,
            self.protocol.max_header_bytes,
            self.protocol.header_read_timeout.as_secs()
        ));
        lines.join("\n")
    }

    /// Serve `app` on every listener (and `metrics` on `--metrics`) until `shutdown`
    /// resolves, then stop accepting and return within the grace period. Whatever must end
    /// open streams at shutdown is the caller's, done before `shutdown` resolves.
    pub async fn serve(
        self,
        app: Router,
        metrics: Router,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let control = Control::new();
        let header_read_timeout = self.protocol.header_read_timeout;
        let mut servers = JoinSet::new();
        for listener in self.listeners {
            let acceptor = ConnAcceptor::new(listener.kind, self.connections.clone());
            let make_service = app.clone().into_make_service();
            let server = axum_server::from_tcp(listener.socket)?
                .handle(Handle::with_control(control.clone()))
                .first_request_timeout(header_read_timeout);
            let server = limits::tune(server, &self.protocol);
            let kind = listener.kind;
            match kind {
                ListenerKind::Http => {
                    servers.spawn(server.acceptor(PeekAcceptor(acceptor)).serve(make_service));
                }
                ListenerKind::Https | ListenerKind::HttpsH1 => {
                    let certificate = self
                        .certificate
                        .as_ref()
                        .context("TLS listener without a certificate")?;
                    let tls = RustlsAcceptor::new(tls::server_config(certificate, kind)?)
                        .handshake_timeout(header_read_timeout)
                        .acceptor(acceptor);
                    let server = server.acceptor(tls::BoxedTls(tls));
                    let server = if kind == ListenerKind::HttpsH1 {
                        server.http1_only()
                    } else {
                        server
                    };
                    servers.spawn(server.serve(make_service));
                }
                // Bound as a UDP socket of its own, never in this list.
                ListenerKind::H3 => anyhow::bail!("the HTTP/3 listener is not a TCP listener"),
            }
        }

        let h3_stop = CancellationToken::new();
        if let Some(socket) = self.h3 {
            let certificate = self
                .certificate
                .clone()
                .context("HTTP/3 listener without a certificate")?;
            let listener = H3Listener {
                socket,
                certificate,
                app: app.clone(),
                counters: self.connections.clone(),
                protocol: self.protocol,
                stop: h3_stop.clone(),
                grace: self.grace,
            };
            servers.spawn(async move { listener.serve().await.map_err(std::io::Error::other) });
        }

        if let Some((socket, _)) = self.metrics {
            let server = axum_server::from_tcp(socket)?
                .handle(Handle::with_control(control.clone()))
                .first_request_timeout(header_read_timeout);
            servers.spawn(server.serve(metrics.into_make_service()));
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
                h3_stop.cancel();
                return Err(reason);
            }
        }

        control.graceful_shutdown(Some(self.grace));
        h3_stop.cancel();
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

/// Past the open-file limit, accepting fails (and axum-server pauses every accept loop) before
/// `--max-connections` is ever reached: say so at start.
fn warn_if_files_run_out_first(limits: ConnLimits) {
    if let Some(files) = admission::open_file_limit()
        && (limits.max_connections as u64).saturating_add(admission::SPARE_FILES) > files
    {
        tracing::warn!(
            "the open-file limit ({files}) is below --max-connections ({}): connections past \
                 about {} fail at accept; raise `ulimit -n` or lower --max-connections",
            limits.max_connections,
            files.saturating_sub(admission::SPARE_FILES)
        );
    }
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
    format!(
        "{}://{}:{}/",
        kind.scheme(),
        loopback_if_unspecified(addr),
        addr.port()
    )
}

/// The host part of a URL for `addr` (IPv6 in brackets); an unspecified address is reached
/// via loopback.
pub fn loopback_if_unspecified(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    }
}
