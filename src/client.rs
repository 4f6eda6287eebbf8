//! Connections for the load generator: HTTP/1.1 or HTTP/2, over TCP or TLS, on hyper's
//! client. One small enum hides which, so the bench's stream loop is the same for all.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;

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
}

/// Where and how to connect: resolved once, shared by every connection.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
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
            _ => {}
        }
        let tls = https
            .then(|| tls_config(proto, cacert, insecure))
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            addr,
            host,
            tls,
            proto,
        })
    }

    /// Open one connection (TCP, TLS if https, then the HTTP handshake).
    pub async fn connect(&self, timeout: Duration) -> Result<Conn, String> {
        let connecting = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect: {}", e.kind()))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => self.handshake(tcp).await,
                Some(config) => {
                    let name = ServerName::try_from(self.host.clone())
                        .map_err(|e| format!("tls: bad server name ({e})"))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("tls: {e}"))?;
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
        let io = TokioIo::new(io);
        match self.proto {
            Proto::H1 => {
                let (send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| format!("http1 handshake: {e}"))?;
                tokio::spawn(conn);
                Ok(Conn::H1(send))
            }
            Proto::H2 | Proto::H2c => {
                let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(1 << 20)
                    .initial_connection_window_size(16 << 20)
                    .handshake(io)
                    .await
                    .map_err(|e| format!("http2 handshake: {e}"))?;
                tokio::spawn(conn);
                Ok(Conn::H2(send))
            }
        }
    }
}

/// One HTTP connection.
pub enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    /// Another handle on the same connection: HTTP/2 multiplexes, HTTP/1.1 cannot.
    pub fn share(&self) -> Option<Conn> {
        match self {
            Conn::H1(_) => None,
            Conn::H2(send) => Some(Conn::H2(send.clone())),
        }
    }

    /// Send a request (origin-form plus Host for HTTP/1.1, absolute for HTTP/2).
    pub async fn send(
        &mut self,
        method: &str,
        uri: &Uri,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let mut builder = Request::builder()
            .method(method)
            .header("accept", "text/event-stream");
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        match self {
            Conn::H1(send) => {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let host = uri.authority().map_or("", |a| a.as_str());
                let request = builder
                    .uri(path)
                    .header(http::header::HOST, host)
                    .body(Full::new(body))
                    .map_err(|e| e.to_string())?;
                send.ready().await.map_err(|e| format!("connection: {e}"))?;
                send.send_request(request)
                    .await
                    .map_err(|e| format!("request: {e}"))
            }
            Conn::H2(send) => {
                let request = builder
                    .uri(uri.clone())
                    .version(http::Version::HTTP_2)
                    .body(Full::new(body))
                    .map_err(|e| e.to_string())?;
                send.ready().await.map_err(|e| format!("connection: {e}"))?;
                send.send_request(request)
                    .await
                    .map_err(|e| format!("request: {e}"))
            }
        }
    }
}

fn tls_config(
    proto: Proto,
    cacert: Option<&Path>,
    insecure: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let Some(cacert) = cacert else {
            bail!("an https URL needs --cacert FILE (e.g. certs/cert.pem) or --insecure");
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cacert)
            .with_context(|| format!("cannot read --cacert {}", cacert.display()))?
        {
            let cert = cert
                .with_context(|| format!("--cacert {}: not a PEM certificate", cacert.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("--cacert {}: unusable certificate", cacert.display()))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match proto {
        Proto::H2 => vec![b"h2".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `--insecure`: accept any certificate (signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
