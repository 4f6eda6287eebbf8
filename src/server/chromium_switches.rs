//! The Chromium command line, made in one place: the headless Chromium sselab drives
//! (`sselab tabs`, `sselab shot`, the browser tests) and the command a person is shown for the
//! HTTP/3 listener ([`super::quic_hint`]: start banner, start page, `/lab`) take their switches
//! from [`chromium_switches`], so what the tests prove is what a person is told to run. It lives
//! here, under the HTTP layer, because the server's own hints print it.
//!
//! Every run has a fresh profile (Chromium honours `--ignore-certificate-errors-spki-list` only
//! with `--user-data-dir`) and QUIC either off or forced on for exactly one origin, so the
//! HTTP/1.1 and HTTP/2 measurements never drift onto HTTP/3 (the why: `browser::http3`).

/// What one Chromium run needs to reach the lab.
#[derive(Debug, Clone, Copy)]
pub struct ChromiumRun<'a> {
    /// `--user-data-dir`: a fresh profile directory (or, for a person, `"$(mktemp -d)"`).
    pub profile: &'a str,
    /// The server certificate's SPKI hash (base64 SHA-256) to trust.
    pub spki_sha256: Option<&'a str>,
    /// `HOST:PORT` to reach over QUIC from the first request; `None` keeps QUIC off.
    pub quic_origin: Option<&'a str>,
    /// Headless and driven over CDP (sselab's own runs), or a window for a person.
    pub headless: bool,
}

/// What a headless, driven Chromium adds: the defaults of chromiumoxide 0.9 (which the lab's
/// browser facts were first measured with) and sselab's own. Left out of those defaults:
/// `--use-mock-keychain` (macOS only) and `--enable-blink-features=IdleDetection` (no page here
/// uses it).
const HEADLESS: &[&str] = &[
    // Headless, speaking CDP on a port it picks and prints on stderr.
    "--headless",
    "--remote-debugging-port=0",
    "--enable-automation",
    "--window-size=1280,900",
    "--hide-scrollbars",
    "--mute-audio",
    // Run as root in a container: no sandbox; a small /dev/shm; no GPU.
    "--no-sandbox",
    "--disable-setuid-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    // No calls home and nothing installed: the only connections are the ones a page asks for.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-first-run",
    "--password-store=basic",
    "--disable-features=TranslateUI",
    "--enable-features=NetworkService,NetworkServiceInProcess",
    // A tab in the background or under load keeps running as measured: no throttled timers,
    // no backgrounded renderer, no hang or flood guards cutting in on a busy machine.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-ipc-flooding-protection",
    "--disable-hang-monitor",
    // Nothing a headless tab would wait on.
    "--disable-popup-blocking",
    "--disable-prompt-on-repost",
    // The same screenshots and page language everywhere.
    "--force-color-profile=srgb",
    "--lang=en_US",
];

/// Every switch for `run`, in order: the profile, QUIC, trust, then (headless) the rest.
pub fn chromium_switches(run: &ChromiumRun) -> Vec<String> {
    let mut switches = vec![format!("--user-data-dir={}", run.profile)];
    switches.push(match run.quic_origin {
        Some(origin) => format!("--origin-to-force-quic-on={origin}"),
        None => "--disable-quic".to_string(),
    });
    if let Some(spki) = run.spki_sha256 {
        switches.push(format!("--ignore-certificate-errors-spki-list={spki}"));
    }
    if run.headless {
        switches.extend(HEADLESS.iter().map(|s| s.to_string()));
    }
    switches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_headless_run_without_quic_turns_it_off_and_trusts_the_certificate() {
        let switches = chromium_switches(&ChromiumRun {
            profile: "/tmp/p",
            spki_sha256: Some("AbC="),
            quic_origin: None,
            headless: true,
        });
        assert_eq!(
            switches[..3],
            [
                "--user-data-dir=/tmp/p",
                "--disable-quic",
                "--ignore-certificate-errors-spki-list=AbC="
            ]
        );
        assert!(switches.contains(&"--headless".to_string()));
        assert!(switches.contains(&"--remote-debugging-port=0".to_string()));
    }

    #[test]
    fn a_person_gets_only_what_reaches_the_lab() {
        let switches = chromium_switches(&ChromiumRun {
            profile: "\"$(mktemp -d)\"",
            spki_sha256: None,
            quic_origin: Some("127.0.0.1:8443"),
            headless: false,
        });
        assert_eq!(
            switches,
            [
                "--user-data-dir=\"$(mktemp -d)\"",
                "--origin-to-force-quic-on=127.0.0.1:8443"
            ]
        );
    }
}
