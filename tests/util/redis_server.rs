//! A real `redis-server` for one test: its own free loopback port, no persistence, stopped
//! when the test is done (or when it is dropped, however the test ended).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Instant;

use tokio::process::{Child, Command};

use super::{Client, Events, PATIENCE, TestServer, Via, accepted, eventually_async};

/// The Debian package's binary; `scripts/test.sh` installs it when missing.
const REDIS_SERVER: &str = "redis-server";

pub struct RedisServer {
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl RedisServer {
    /// Start one on a free port and wait until it answers `PING`.
    pub async fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: None,
        };
        server.start_again().await;
        server
    }

    /// `redis://127.0.0.1:PORT`, for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Start it (again) on the same port: with no persistence, empty, as after a crash.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(REDIS_SERVER)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            // No persistence: nothing written, nothing loaded.
            .args(["--save", "", "--appendonly", "no"])
            // Small stream nodes, so `XADD MAXLEN ~ N` trims close to N in tests.
            .args(["--stream-node-max-entries", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{REDIS_SERVER} did not start ({e}): apt-get install redis-server")
            });
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.ping().await {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server answers PING");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    /// Run one command and give its answer.
    pub async fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis-server");
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await.expect("redis command")
    }

    /// Kill it and wait until it is gone (its data goes with it).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }
}

/// A node on `redis`, its pub/sub link up (so a subscribe is not refused while it connects).
pub async fn node(redis: &RedisServer, extra: &[&str]) -> TestServer {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args).await;
    until_health(&server, "ok").await;
    server
}

/// Wait until the node's `/healthz` says `status`.
pub async fn until_health(server: &TestServer, status: &str) {
    let client = server.client(Via::H2c).await;
    eventually_async(&format!("/healthz says {status}"), async || {
        super::json(client.get("/healthz").await).await["status"] == status
    })
    .await;
}

pub async fn publish(client: &Client, topic: &str, data: &str) -> u64 {
    let path = format!("/api/topics/{topic}/events");
    let answer = accepted(client.post(&path, "text/plain", data.to_string()).await).await;
    answer["id"].as_u64().expect("the id Redis gave")
}

/// Nothing more arrives (and the stream stays open) for a while.
pub async fn quiet(events: &mut Events) {
    let next = events
        .next_within(std::time::Duration::from_millis(500))
        .await;
    assert!(next.is_err(), "nothing more, stream open: {next:?}");
}
