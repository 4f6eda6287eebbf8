//! The load generator's recipe for a connection: one URL resolved once into an address, a
//! TLS configuration and a protocol, from which every stream's connection is opened alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Uri;

use super::{Conn, H2Windows, Trust, connect_tcp, connect_tls, quic_config, tls_config};

/// How the bench speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// HTTP/1.1 (over TLS for https URLs): one connection per stream.
    H1,
    /// HTTP/2 over TLS (ALPN h2).
    H2,
    /// HTTP/2 with prior knowledge over plain TCP.
    H2c,
    /// HTTP/3 over QUIC (UDP, ALPN h3): https URLs only, at the URL's port.
    H3,
}

/// Windows larger than hyper's stream window, so that thousands of streams on one connection
/// are not held back by flow control while the bench is busy reading the others.
const BENCH_WINDOWS: H2Windows = H2Windows {
    stream: Some(1 << 20),
    connection: Some(16 << 20),
};

/// Where and how to connect: resolved once, shared by every connection.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The QUIC configuration made from `tls`, for HTTP/3.
    pub quic: Option<quinn::ClientConfig>,
    pub proto: Proto,
}

impl Target {
    /// Resolve `uri` for `proto`; https needs `cacert` or `insecure`.
    pub fn new(
        uri: &Uri,
        proto: Proto,
        cacert: Option<&Path>,
        insecure: bool,
    ) -> anyhow::Result<Self> {
        let host = uri
            .host()
            .context("the URL has no host")?
            .trim_matches(['[', ']'])
            .to_string();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => bail!("unsupported scheme {other:?}: use http:// or https://"),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        match (proto, https) {
            (Proto::H2c, true) => bail!("--proto h2c is HTTP/2 over plain TCP: use an http:// URL"),
            (Proto::H2, false) => {
                bail!("--proto h2 is HTTP/2 over TLS: use an https:// URL, or --proto h2c")
            }
            (Proto::H3, false) => {
                bail!("--proto h3 is HTTP/3 over QUIC, always encrypted: use an https:// URL")
            }
            _ => {}
        }
        let tls = https
            .then(|| bench_tls(proto, cacert, insecure))
            .transpose()?
            .map(Arc::new);
        let quic = match (&tls, proto) {
            (Some(tls), Proto::H3) => Some(quic_config(tls.clone())?),
            _ => None,
        };
        Ok(Self {
            addr,
            host,
            tls,
            quic,
            proto,
        })
    }

    /// Open one connection (TCP, TLS if https, then the HTTP handshake; HTTP/3: QUIC from a
    /// UDP socket of its own, then the HTTP/3 handshake).
    pub async fn connect(&self, timeout: Duration) -> Result<Conn, String> {
        let connecting = async {
            if let Some(quic) = &self.quic {
                return Conn::connect_h3(self.addr, &self.host, quic.clone()).await;
            }
            let tcp = connect_tcp(self.addr).await?;
            match &self.tls {
                None => self.handshake(tcp).await,
                Some(config) => {
                    let tls = connect_tls(tcp, &self.host, config.clone()).await?;
                    self.handshake(tls).await
                }
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .unwrap_or_else(|_| Err("connect: timed out".into()))
    }

    async fn handshake<IO>(&self, io: IO) -> Result<Conn, String>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        match self.proto {
            Proto::H1 => Conn::handshake_h1(io).await,
            Proto::H2 | Proto::H2c => Conn::handshake_h2(io, BENCH_WINDOWS).await,
            Proto::H3 => Err("HTTP/3 runs over QUIC, not over a TCP stream".into()),
        }
    }
}

/// The TLS configuration `--cacert` or `--insecure` asks for, offering only `proto`.
fn bench_tls(
    proto: Proto,
    cacert: Option<&Path>,
    insecure: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let alpn: &[u8] = match proto {
        Proto::H2 => b"h2",
        Proto::H3 => b"h3",
        _ => b"http/1.1",
    };
    match (insecure, cacert) {
        (true, _) => tls_config(Trust::AnyCertificate, &[alpn]),
        (false, Some(cacert)) => tls_config(Trust::Pem(cacert), &[alpn]).context("--cacert"),
        (false, None) => {
            bail!("an https URL needs --cacert FILE (e.g. certs/cert.pem) or --insecure")
        }
    }
}
