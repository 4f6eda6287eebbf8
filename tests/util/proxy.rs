//! A TCP proxy on loopback between one node and Redis, to cut that node off while the others
//! still reach Redis. [`Proxy::cut`] is a partition, not a closed socket: every connection,
//! open or new, stays open and no byte goes through either way, so only a timeout (the link's
//! heartbeat) can tell; [`Proxy::heal`] lets the held bytes go on, as TCP's retransmits would.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Bytes read from one side before they are written to the other.
const BUFFER: usize = 16 * 1024;

/// Forwards every connection to its port to one address until cut; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `to`.
    pub async fn start(to: SocketAddr) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a free port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (cut, watching) = watch::channel(false);
        let accepting = tokio::spawn(accept(listener, to, watching));
        Self {
            addr,
            cut,
            accepting,
        }
    }

    /// `redis://` through the proxy, for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// From now on nothing goes through, either way, on any connection; sockets stay open.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forward again, what was held first.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    /// The accept loop owns the connections' tasks: they end with it.
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, to: SocketAddr, cut: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(forward(client, to, cut.clone()));
    }
}

/// One connection: both directions until each has ended.
async fn forward(client: TcpStream, to: SocketAddr, cut: watch::Receiver<bool>) {
    let Ok(server) = TcpStream::connect(to).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, cut.clone()),
        pump(server_read, client_write, cut),
    );
}

/// Copy `from` to `to`; what is read while cut (an end too) is held until healed, and the
/// kernel's buffers hold the rest.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buffer = vec![0; BUFFER];
    loop {
        let read = from.read(&mut buffer).await.unwrap_or(0);
        if cut.wait_for(|cut| !cut).await.is_err() {
            return;
        }
        if read == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
