//! The rustls server configuration for a TLS listener: the certificate, the ring provider,
//! and the ALPN list that decides which protocols a listener can speak; and
//! [`BoxedTls`], which keeps the TLS state out of the connection's task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use futures_util::TryFutureExt;
use futures_util::future::MapOk;

use super::ListenerKind;
use super::certs::CertMaterial;

/// The ALPN protocols a TLS listener offers: h2 then http/1.1, http/1.1 only, or h3.
pub fn alpn_for(kind: ListenerKind) -> Vec<Vec<u8>> {
    match kind {
        ListenerKind::Https => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ListenerKind::H3 => vec![b"h3".to_vec()],
        ListenerKind::Http | ListenerKind::HttpsH1 => vec![b"http/1.1".to_vec()],
    }
}

/// A rustls configuration (ring provider) serving `certificate` with `kind`'s ALPN list.
pub fn server_config(
    certificate: &CertMaterial,
    kind: ListenerKind,
) -> anyhow::Result<RustlsConfig> {
    Ok(RustlsConfig::from_config(Arc::new(rustls_config(
        certificate,
        kind,
    )?)))
}

/// The rustls configuration itself, for a TCP listener or for QUIC (which takes TLS 1.3 from
/// the same defaults).
pub fn rustls_config(
    certificate: &CertMaterial,
    kind: ListenerKind,
) -> anyhow::Result<rustls::ServerConfig> {
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
    config.alpn_protocols = alpn_for(kind);
    Ok(config)
}

/// Keeps the TLS state out of each connection's task: the handshake runs in an allocation of
/// its own, freed when it ends, and the TLS stream (1.2 KiB, most of it rustls'
/// `ServerConnection`) is boxed. axum-server awaits the handshake and then serves the stream
/// inside one task, and the compiler lays that task out with room for the handshake's state and
/// two copies of the stream; boxed, each is a pointer there, and every idle TLS connection is
/// about 2.4 KiB smaller.
#[derive(Debug, Clone)]
pub struct BoxedTls<A>(pub A);

/// The accepted stream, moved into its box.
type Boxing<T, S> = fn((T, S)) -> (Box<T>, S);

impl<I, S, A: Accept<I, S>> Accept<I, S> for BoxedTls<A>
where
    A::Future: Future<Output = io::Result<(A::Stream, A::Service)>>,
{
    type Stream = Box<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<MapOk<A::Future, Boxing<A::Stream, A::Service>>>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let boxing: Boxing<A::Stream, A::Service> = |(stream, service)| (Box::new(stream), service);
        Box::pin(self.0.accept(stream, service).map_ok(boxing))
    }
}
