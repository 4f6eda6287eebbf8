//! The four kinds of listener sselab serves the same router on, everything said about each
//! in one place, and the ports they were bound to.

use std::fmt;

use serde::Serialize;

/// The listeners sselab serves the same router on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ListenerKind {
    /// Plain HTTP/1.1 (and h2c with prior knowledge).
    #[serde(rename = "http")]
    Http,
    /// TLS with ALPN h2 then http/1.1.
    #[serde(rename = "https")]
    Https,
    /// TLS with ALPN http/1.1 only: the control.
    #[serde(rename = "https-h1")]
    HttpsH1,
    /// QUIC (UDP) with ALPN h3: HTTP/3.
    #[serde(rename = "h3")]
    H3,
}

impl ListenerKind {
    pub const ALL: [ListenerKind; 4] = [Self::Http, Self::Https, Self::HttpsH1, Self::H3];
    /// How many kinds there are, for per-listener counters.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ListenerKind::ALL`], for per-listener counters.
    pub fn index(self) -> usize {
        match self {
            Self::Http => 0,
            Self::Https => 1,
            Self::HttpsH1 => 2,
            Self::H3 => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::HttpsH1 => "https-h1",
            Self::H3 => "h3",
        }
    }

    pub fn scheme(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https | Self::HttpsH1 | Self::H3 => "https",
        }
    }

    /// Its transport, as the start banner prints it.
    pub fn transport(self) -> &'static str {
        match self {
            Self::Http => "plain HTTP/1.1 (+ HTTP/2 prior knowledge)",
            Self::Https => "TLS, ALPN h2 + http/1.1",
            Self::HttpsH1 => "TLS, ALPN http/1.1 only (the control)",
            Self::H3 => "QUIC (UDP), ALPN h3",
        }
    }

    /// A short label for a page's list of targets.
    pub fn label(self) -> &'static str {
        match self {
            Self::Http => "plain HTTP/1.1",
            Self::Https => "HTTPS, HTTP/2",
            Self::HttpsH1 => "HTTPS, HTTP/1.1 only",
            Self::H3 => "HTTPS, HTTP/3 (QUIC)",
        }
    }

    /// What a browser shows on it, for the start page.
    pub fn what_it_shows(self) -> &'static str {
        match self {
            Self::Http => "plain HTTP/1.1: 6 streams per host at most",
            Self::Https => "HTTPS with HTTP/2: every tab on one connection",
            Self::HttpsH1 => "HTTPS, HTTP/1.1 only: TLS alone does not lift the limit",
            Self::H3 => "HTTP/3 over QUIC: every tab on one connection, no TCP at all",
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The bound port of each listener that is on, for links between them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    pub http: Option<u16>,
    pub https: Option<u16>,
    pub https_h1: Option<u16>,
    /// The UDP port of the HTTP/3 listener.
    pub h3: Option<u16>,
}

impl Ports {
    pub fn get(&self, kind: ListenerKind) -> Option<u16> {
        match kind {
            ListenerKind::Http => self.http,
            ListenerKind::Https => self.https,
            ListenerKind::HttpsH1 => self.https_h1,
            ListenerKind::H3 => self.h3,
        }
    }
}
