//! Connection caps: how many connections may be open at once over every listener
//! (`--max-connections`) and from one peer address (`--max-connections-per-ip`).
//!
//! The check runs once per accepted TCP connection, before TLS, so a connection stuck in its
//! handshake counts like any other. A connection over a cap is turned away by
//! [`super::refusal`]: a plain one is told why (a refusal stream an EventSource comes back
//! from, or a `503`), a TLS one is closed before the handshake the cap is there to save. The
//! `--metrics` listener is not capped, so an operator can still look while the server is
//! full.
//!
//! Addresses are counted as they are: an IPv6 client owning a whole /64 is many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;

use super::ListenerKind;
use super::refusal::{ConnAnswer, READING_AT_ONCE, RefusalConfig, Refusals};
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

    pub(super) fn index(self) -> usize {
        match self {
            Self::MaxConnections => 0,
            Self::MaxConnectionsPerIp => 1,
        }
    }
}

/// The open connections counted against the caps, and the refusals.
#[derive(Debug)]
pub struct Admission {
    limits: ConnLimits,
    open: AtomicUsize,
    /// Open connections per peer address; an address leaves the map with its last connection.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Answers the connections refused, and counts the answers.
    refusals: Arc<Refusals>,
}

impl Admission {
    pub fn new(limits: ConnLimits, refusals: RefusalConfig) -> Self {
        Self {
            limits,
            open: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refusals: Arc::new(Refusals::new(refusals, READING_AT_ONCE)),
        }
    }

    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// Count a new connection from `ip` in, or say which cap it is over. Every admitted
    /// connection must be [`release`](Self::release)d exactly once; every refused one
    /// [`turn_away`](Self::turn_away)ed (or, over QUIC, [`refused_quic`](Self::refused_quic)).
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        // Taken first and given back on refusal, so two racing accepts cannot both get the
        // last place.
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::MaxConnections);
        }
        if let Some(ip) = ip {
            let mut per_ip = lock(&self.per_ip);
            let count = per_ip.entry(ip).or_default();
            if *count >= self.limits.max_connections_per_ip {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::MaxConnectionsPerIp);
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

    /// Refusals so far, per listener, cap and how they were answered; a plain connection
    /// is counted once answered (within [`super::refusal::HEAD_WAIT`] of its refusal).
    pub fn refused(&self) -> Vec<(ListenerKind, Refusal, ConnAnswer, u64)> {
        self.refusals.answered()
    }

    /// Peer addresses with a connection open now.
    pub fn peers(&self) -> usize {
        lock(&self.per_ip).len()
    }

    /// Answer and close a refused TCP connection ([`super::refusal`]).
    pub fn turn_away(&self, stream: TcpStream, listener: ListenerKind, refusal: Refusal) {
        self.refusals
            .turn_away(stream, listener, refusal, self.limits);
    }

    /// Count a QUIC connection refused (with CONNECTION_REFUSED, by the HTTP/3 listener).
    pub fn refused_quic(&self, refusal: Refusal) {
        self.refusals
            .count(ListenerKind::H3, refusal, ConnAnswer::Closed);
    }
}

/// Files the process needs besides its connections: listeners, certificates, the runtime's
/// own descriptors, a headless browser's pipes (64), and the refused connections being read
/// at once ([`READING_AT_ONCE`]).
pub const SPARE_FILES: u64 = 64 + READING_AT_ONCE as u64;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::origins::AllowedOrigins;

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn each_cap_refuses_past_its_limit_and_a_release_frees_a_place() {
        let admission = Admission::new(
            ConnLimits {
                max_connections: 3,
                max_connections_per_ip: 2,
            },
            RefusalConfig {
                event_streams: true,
                retry_jitter: 0.0,
                origins: AllowedOrigins::Any,
            },
        );
        let other: Option<IpAddr> = "10.0.0.2".parse().ok();
        assert_eq!(admission.admit(LOCAL), Ok(()));
        assert_eq!(admission.admit(LOCAL), Ok(()));
        assert_eq!(admission.admit(LOCAL), Err(Refusal::MaxConnectionsPerIp));
        assert_eq!(admission.admit(other), Ok(()));
        assert_eq!(admission.admit(other), Err(Refusal::MaxConnections));
        assert_eq!(admission.peers(), 2);

        admission.release(LOCAL);
        assert_eq!(admission.admit(LOCAL), Ok(()));
        for _ in 0..2 {
            admission.release(LOCAL);
        }
        admission.release(other);
        assert_eq!(
            admission.peers(),
            0,
            "addresses leave with their last connection"
        );

        admission.refused_quic(Refusal::MaxConnections);
        let refused: Vec<_> = admission
            .refused()
            .into_iter()
            .filter(|(_, _, _, n)| *n > 0)
            .collect();
        assert_eq!(
            refused,
            vec![(
                ListenerKind::H3,
                Refusal::MaxConnections,
                ConnAnswer::Closed,
                1
            )]
        );
    }
}
