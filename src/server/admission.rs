//! Connection caps: how many connections may be open at once over every listener
//! (`--max-connections`) and from one peer address (`--max-connections-per-ip`).
//!
//! The check runs once per accepted TCP connection, before TLS, so a connection stuck in its
//! handshake counts like any other. A connection over a cap is closed at once: a plain one is
//! first written a canned `503` with `Retry-After` when the socket takes it without waiting
//! (it always does on a fresh connection), a TLS one is just closed, since answering would
//! cost the handshake the cap is there to save. The `--metrics` listener is not capped, so an
//! operator can still look while the server is full.
//!
//! Addresses are counted as they are: an IPv6 client owning a whole /64 is many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::TcpStream;

use super::ListenerKind;
use crate::sync::lock;

/// `--max-connections` and `--max-connections-per-ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MaxConnections,
    MaxConnectionsPerIp,
}

impl Refusal {
    pub const ALL: [Refusal; 2] = [Self::MaxConnections, Self::MaxConnectionsPerIp];

    /// The `reason` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::MaxConnectionsPerIp => "max_connections_per_ip",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::MaxConnections => 0,
            Self::MaxConnectionsPerIp => 1,
        }
    }
}

/// Seconds a refused client is told to wait, as the HTTP layer's own 503s say.
const REFUSED_RETRY_AFTER_SECS: u64 = 5;

/// Reads of 4 KiB a refused plain connection gets to have its request dropped quietly.
const DISCARD_READS: usize = 4;

/// The open connections counted against the caps, and the refusals.
#[derive(Debug)]
pub struct Admission {
    limits: ConnLimits,
    open: AtomicUsize,
    /// Open connections per peer address; an address leaves the map with its last connection.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals per listener (in [`ListenerKind::ALL`] order) and per [`Refusal`].
    refused: [[AtomicU64; 2]; ListenerKind::COUNT],
}

impl Admission {
    pub fn new(limits: ConnLimits) -> Self {
        Self {
            limits,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refused: Default::default(),
        }
    }

    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// Count a new connection from `ip` in, or say which cap it is over (and count that).
    /// Every admitted connection must be [`release`](Self::release)d exactly once.
    pub fn admit(&self, listener: ListenerKind, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let refused = |refusal: Refusal| {
            self.refused[listener.index()][refusal.index()].fetch_add(1, Ordering::Relaxed);
            Err(refusal)
        };
        // Taken first and given back on refusal, so two racing accepts cannot both get the
        // last place.
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return refused(Refusal::MaxConnections);
        }
        if let Some(ip) = ip {
            let mut per_ip = lock(&self.per_ip);
            let count = per_ip.entry(ip).or_default();
            if *count >= self.limits.max_connections_per_ip {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return refused(Refusal::MaxConnectionsPerIp);
            }
            *count += 1;
        }
        Ok(())
    }

    /// An admitted connection from `ip` closed.
    pub fn release(&self, ip: Option<IpAddr>) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = ip {
            let mut per_ip = lock(&self.per_ip);
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }

    /// Refusals so far, per listener and cap.
    pub fn refused(&self) -> Vec<(ListenerKind, Refusal, u64)> {
        ListenerKind::ALL
            .iter()
            .flat_map(|&kind| {
                Refusal::ALL.map(|refusal| {
                    let n = self.refused[kind.index()][refusal.index()].load(Ordering::Relaxed);
                    (kind, refusal, n)
                })
            })
            .collect()
    }

    /// Peer addresses with a connection open now.
    pub fn peers(&self) -> usize {
        lock(&self.per_ip).len()
    }

    /// Close a refused connection: plain HTTP/1.1 is first told why with a 503, if the
    /// socket takes it without waiting; TLS is just closed.
    pub fn turn_away(&self, stream: TcpStream, listener: ListenerKind, refusal: Refusal) {
        if listener == ListenerKind::Http {
            let response = refusal_response(refusal, self.limits);
            // A fresh socket's send buffer is empty, so this writes all of it or nothing.
            let _ = stream.try_write(response.as_bytes());
            // Whatever request already arrived is read and dropped, so closing sends FIN and
            // not RST (an RST could reach the client before it read the 503). Bounded: a
            // client that keeps sending gets its RST.
            let mut discard = [0u8; 4096];
            for _ in 0..DISCARD_READS {
                if !matches!(stream.try_read(&mut discard), Ok(n) if n > 0) {
                    break;
                }
            }
        }
        drop(stream);
    }
}

/// Files the process needs besides its connections: listeners, certificates, the runtime's
/// own descriptors, a headless browser's pipes.
pub const SPARE_FILES: u64 = 64;

/// The soft limit on open files of this process (`ulimit -n`), from `/proc/self/limits`.
/// Above it, accepting fails before any cap is reached.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The canned answer to a plain HTTP connection over a cap: one line saying which flag.
fn refusal_response(refusal: Refusal, limits: ConnLimits) -> String {
    let body = match refusal {
        Refusal::MaxConnections => format!(
            "too many connections: this server holds at most {} (--max-connections); try again later\n",
            limits.max_connections
        ),
        Refusal::MaxConnectionsPerIp => format!(
            "too many connections from your address: at most {} (--max-connections-per-ip); try again later\n",
            limits.max_connections_per_ip
        ),
    };
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: {REFUSED_RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn each_cap_refuses_past_its_limit_and_a_release_frees_a_place() {
        let admission = Admission::new(ConnLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
        });
        let other: Option<IpAddr> = "10.0.0.2".parse().ok();
        assert_eq!(admission.admit(ListenerKind::Http, LOCAL), Ok(()));
        assert_eq!(admission.admit(ListenerKind::Https, LOCAL), Ok(()));
        assert_eq!(
            admission.admit(ListenerKind::Http, LOCAL),
            Err(Refusal::MaxConnectionsPerIp)
        );
        assert_eq!(admission.admit(ListenerKind::Http, other), Ok(()));
        assert_eq!(
            admission.admit(ListenerKind::HttpsH1, other),
            Err(Refusal::MaxConnections)
        );
        assert_eq!(admission.peers(), 2);

        admission.release(LOCAL);
        assert_eq!(admission.admit(ListenerKind::Http, LOCAL), Ok(()));
        for _ in 0..2 {
            admission.release(LOCAL);
        }
        admission.release(other);
        assert_eq!(
            admission.peers(),
            0,
            "addresses leave with their last connection"
        );

        let refused: Vec<_> = admission
            .refused()
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .collect();
        assert_eq!(
            refused,
            vec![
                (ListenerKind::Http, Refusal::MaxConnectionsPerIp, 1),
                (ListenerKind::HttpsH1, Refusal::MaxConnections, 1),
            ]
        );
    }

    #[test]
    fn the_canned_503_is_one_line_naming_the_flag_with_a_right_length() {
        let limits = ConnLimits {
            max_connections: 7,
            max_connections_per_ip: 3,
        };
        for (refusal, flag) in [
            (Refusal::MaxConnections, "(--max-connections)"),
            (Refusal::MaxConnectionsPerIp, "(--max-connections-per-ip)"),
        ] {
            let response = refusal_response(refusal, limits);
            let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
            assert!(head.starts_with("HTTP/1.1 503 "));
            assert!(head.contains("\r\nretry-after: 5\r\n"));
            assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
            assert!(body.contains(flag), "{body}");
            assert_eq!(body.lines().count(), 1);
        }
    }
}
