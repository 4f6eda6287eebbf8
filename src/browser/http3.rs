//! HTTP/3 in the headless browsers: the one origin a lab browser reaches over QUIC, and the
//! switches each engine needs to do it.
//!
//! Neither browser uses QUIC to a fresh local server on its own: both learn of HTTP/3 from an
//! `Alt-Svc` header over TCP first, and both refuse QUIC with a self-signed certificate that
//! the TCP side would accept. So the lab names the origin and forces it:
//! - Chromium (switches from `server::chromium_switches`, the one place that makes them): no
//!   `--disable-quic`, `--origin-to-force-quic-on=HOST:PORT` (this origin's `Display`) and the
//!   certificate's SPKI hash in `--ignore-certificate-errors-spki-list`, with a fresh
//!   `--user-data-dir`. The plain `--ignore-certificate-errors` is not enough for QUIC (the
//!   handshake fails with `CERTIFICATE_VERIFY_FAILED`), and `--enable-quic` is not needed.
//! - Firefox ESR: `network.http.http3.enable`, `network.http.http3.alt-svc-mapping-for-testing`
//!   (`HOST;h3=:PORT`: go straight to HTTP/3 there, no Alt-Svc needed) and
//!   `network.http.http3.disable_when_third_party_roots_found` off: without it Firefox closes
//!   its own QUIC handshake (`APPLICATION_ERROR`) and the page fails with
//!   `NS_ERROR_CONNECTION_REFUSED` (measured). The certificate itself is accepted by the BiDi
//!   session (`acceptInsecureCerts`), as over TCP.
//!
//! Every other run keeps QUIC off (`--disable-quic`, `network.http.http3.enable` false), so the
//! HTTP/1.1 and HTTP/2 measurements never drift onto HTTP/3.

use std::fmt;

use anyhow::{Context, bail};
use http::Uri;

/// The one origin a lab browser reaches over HTTP/3, e.g. `127.0.0.1:8443` (UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicOrigin {
    pub host: String,
    pub port: u16,
}

impl QuicOrigin {
    /// The origin of an `https://` URL (HTTP/3 is TLS only); the port defaults to 443.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            bail!("{url}: HTTP/3 needs an https:// URL");
        }
        let host = uri
            .host()
            .with_context(|| format!("{url} has no host"))?
            .to_string();
        Ok(Self {
            host,
            port: uri.port_u16().unwrap_or(443),
        })
    }

    /// Firefox's `user.js` lines that send this origin's requests over HTTP/3.
    pub fn firefox_prefs(&self) -> String {
        format!(
            "// HTTP/3 to {self}: straight to QUIC there (no Alt-Svc needed); without the\n\
             // third-party-roots pref Firefox refuses QUIC to a self-signed server.\n\
             user_pref(\"network.http.http3.enable\", true);\n\
             user_pref(\"network.http.http3.alt-svc-mapping-for-testing\", \"{host};h3=:{port}\");\n\
             user_pref(\"network.http.http3.disable_when_third_party_roots_found\", false);\n",
            host = self.host,
            port = self.port
        )
    }
}

impl fmt::Display for QuicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Firefox's `user.js` line for every run that is not over HTTP/3.
pub const FIREFOX_QUIC_OFF: &str = "// HTTP/3: off, as Chromium runs with --disable-quic \
(the lab compares HTTP/1.1 with HTTP/2).\nuser_pref(\"network.http.http3.enable\", false);\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_url_names_its_origin() {
        let origin = QuicOrigin::of_url("https://127.0.0.1:8443/?timeout=3").expect("origin");
        assert_eq!(origin.to_string(), "127.0.0.1:8443");
        assert!(origin.firefox_prefs().contains(
            "\"network.http.http3.alt-svc-mapping-for-testing\", \"127.0.0.1;h3=:8443\""
        ));
        assert_eq!(
            QuicOrigin::of_url("https://localhost/")
                .expect("origin")
                .port,
            443
        );
    }

    #[test]
    fn plain_http_cannot_be_http3() {
        let error = QuicOrigin::of_url("http://127.0.0.1:8080/").expect_err("refused");
        assert!(
            error.to_string().contains("needs an https:// URL"),
            "{error}"
        );
    }
}
