//! How a person makes a browser use the HTTP/3 listener, said the same way in the start
//! banner, on the start page and in `/lab`.
//!
//! A browser reaches an HTTP/3 origin only over QUIC, and only when it has a reason to: an
//! `Alt-Svc` it learned from the HTTPS listener, or a switch. Chromium does not take QUIC to
//! a server whose self-signed certificate it was not told to trust, so the lab needs the
//! switches: `--origin-to-force-quic-on` (QUIC to that origin from the first request), the
//! certificate's SPKI hash (`--ignore-certificate-errors-spki-list`, which Chromium honours
//! only together with `--user-data-dir`), and a fresh profile so nothing remembered interferes.
//! The switches are the ones sselab's own headless Chromium gets ([`super::chromium_switches`]).

use super::chromium_switches::{ChromiumRun, chromium_switches};

/// The Chromium command line that opens `https://HOST:PORT/` over HTTP/3, trusting the
/// certificate with this SPKI hash (`host_for_url`: an IPv6 literal in brackets).
pub fn chromium_command(host_for_url: &str, port: u16, spki_sha256: Option<&str>) -> String {
    let origin = format!("{host_for_url}:{port}");
    let switches = chromium_switches(&ChromiumRun {
        profile: "\"$(mktemp -d)\"",
        spki_sha256,
        quic_origin: Some(&origin),
        headless: false,
    });
    format!("chromium {} https://{origin}/", switches.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_forces_quic_on_the_origin_and_trusts_the_certificate() {
        assert_eq!(
            chromium_command("127.0.0.1", 8443, Some("AbC=")),
            "chromium --user-data-dir=\"$(mktemp -d)\" --origin-to-force-quic-on=127.0.0.1:8443 \
             --ignore-certificate-errors-spki-list=AbC= https://127.0.0.1:8443/"
        );
    }
}
