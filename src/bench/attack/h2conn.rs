//! One attacking HTTP/2 connection, as rapid reset and the CONTINUATION flood both need it:
//! connected (TLS with ALPN h2, or h2c), the preface exchanged, and the server's frames read
//! on a task of their own, so its GOAWAY is seen even when a write after it fails. How the
//! connections ended is counted the same way for both.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::args::AttackPlan;
use crate::client::h2raw::{self, Frame};
use crate::client::{connect_tcp, connect_tls};
use crate::sync::lock;

/// A plain or TLS connection, as one type.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(super) struct H2Conn {
    pub writer: WriteHalf<Box<dyn Io>>,
    /// The server's GOAWAY `(last stream, error)`, or `None` when it closed without one.
    goaway: JoinHandle<Option<(u32, u32)>>,
}

/// How the connections of an attack ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Endings {
    pub connections: u64,
    /// By the server's GOAWAY error code.
    pub goaways: BTreeMap<String, u64>,
    /// Closed by the server without a GOAWAY.
    pub closed_without_goaway: u64,
    /// Still attacking when the attack stopped.
    pub stopped: u64,
    pub connect_failures: BTreeMap<String, u64>,
}

/// [`Endings`], counted as the connections end.
#[derive(Default)]
pub(super) struct EndingsTally {
    connections: AtomicU64,
    closed_without_goaway: AtomicU64,
    stopped: AtomicU64,
    goaways: Mutex<BTreeMap<String, u64>>,
    connect_failures: Mutex<BTreeMap<String, u64>>,
}

impl EndingsTally {
    pub fn connect_failed(&self, reason: String) {
        *lock(&self.connect_failures).entry(reason).or_default() += 1;
    }

    pub fn endings(&self) -> Endings {
        Endings {
            connections: self.connections.load(Ordering::Relaxed),
            goaways: lock(&self.goaways).clone(),
            closed_without_goaway: self.closed_without_goaway.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
            connect_failures: lock(&self.connect_failures).clone(),
        }
    }
}

impl H2Conn {
    /// Connect to the plan's target and start HTTP/2; counts the connection.
    pub async fn open(plan: &AttackPlan, tally: &EndingsTally) -> Result<Self, String> {
        let connecting = async {
            let tcp = connect_tcp(plan.target.addr).await?;
            let io: Box<dyn Io> = match &plan.target.tls {
                None => Box::new(tcp),
                Some(config) => {
                    Box::new(connect_tls(tcp, &plan.target.host, config.clone()).await?)
                }
            };
            h2raw::open(io)
                .await
                .map_err(|e| format!("http2 preface: {e}"))
        };
        let (mut reader, writer) = tokio::time::timeout(plan.connect_timeout, connecting)
            .await
            .map_err(|_| "connect: timed out".to_string())??;
        tally.connections.fetch_add(1, Ordering::Relaxed);
        let goaway = tokio::spawn(async move {
            loop {
                match reader.next().await {
                    Ok(Some(Frame::GoAway { last_stream, error })) => {
                        return Some((last_stream, error));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return None,
                }
            }
        });
        Ok(Self { writer, goaway })
    }

    /// The server has ended the connection (its reader saw GOAWAY or the close).
    pub fn ended(&self) -> bool {
        self.goaway.is_finished()
    }

    /// The request head `plan.url` asks for, as an HPACK block.
    pub fn request_block(plan: &AttackPlan) -> Vec<u8> {
        let scheme = if plan.target.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let authority = plan.url.authority().map_or("", |a| a.as_str());
        let path = plan.url.path_and_query().map_or("/", |p| p.as_str());
        h2raw::get_block(scheme, authority, path, &[])
    }

    /// Once writing stopped: wait for the server's last word (until `stop` or the connect
    /// timeout) and count how the connection ended. Gives the GOAWAY's last stream.
    pub async fn finish(
        mut self,
        plan: &AttackPlan,
        tally: &EndingsTally,
        stop: &CancellationToken,
    ) -> Option<u32> {
        let ended = tokio::select! {
            ended = &mut self.goaway => ended.ok().flatten(),
            _ = stop.cancelled() => None,
            _ = tokio::time::sleep(plan.connect_timeout) => None,
        };
        self.goaway.abort();
        match ended {
            Some((last_stream, error)) => {
                *lock(&tally.goaways)
                    .entry(h2raw::error_name(error))
                    .or_default() += 1;
                Some(last_stream)
            }
            None => {
                let counter = if stop.is_cancelled() {
                    &tally.stopped
                } else {
                    &tally.closed_without_goaway
                };
                counter.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}
