//! A real `redis-server` for one test: its own free loopback port, no persistence, stopped
//! when the test is done (or when it is dropped, however the test ended).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{Client, Events, PATIENCE, TestServer, Via, accepted, eventually_async, skip};

/// The Debian package's binary; `scripts/test.sh` installs it when missing.
const REDIS_SERVER: &str = "redis-server";

pub struct RedisServer {
    pub addr: SocketAddr,
    child: Option<Child>,
    /// With TLS only (`rediss://`): its own CA, and the server's certificate signed by it.
    pub tls: Option<RedisTls>,
}

/// The files of a TLS Redis: the CA to trust (`--redis-ca`), the server's certificate and key.
pub struct RedisTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: TempDir,
}

impl RedisTls {
    /// A CA, and a certificate it signed for 127.0.0.1 and localhost (one for every node of a
    /// cluster or Sentinel setup: they all listen on 127.0.0.1).
    pub fn make() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Names of their own: rcgen gives both the same, and OpenSSL (redis-cli, Redis's
        // cluster bus) then takes the server's certificate for a self-signed one.
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sselab test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let key = rcgen::KeyPair::generate().expect("server key");
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sselab test Redis");
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ca.pem"), ca.pem()).expect("write CA");
        std::fs::write(path("cert.pem"), cert.pem()).expect("write certificate");
        std::fs::write(path("key.pem"), key.serialize_pem()).expect("write key");
        Self {
            ca: path("ca.pem"),
            cert: path("cert.pem"),
            key: path("key.pem"),
            _dir: dir,
        }
    }
}

impl RedisServer {
    /// Start one on a free port and wait until it answers `PING`; `None` when
    /// `SSELAB_TEST_SKIP` names `redis` (said on stderr): the test then returns.
    pub async fn start() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(None).await)
    }

    /// [`RedisServer::start`], speaking only TLS, with a certificate from its own CA.
    pub async fn start_tls() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(Some(RedisTls::make())).await)
    }

    async fn start_with(tls: Option<RedisTls>) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: None,
            tls,
        };
        server.start_again().await;
        server
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS), for `--redis`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// A client that trusts this server (its CA, with TLS).
    fn client(&self) -> redis::Client {
        match &self.tls {
            None => redis::Client::open(self.url()),
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(&tls.ca).expect("CA file")),
                },
            ),
        }
        .expect("redis url")
    }

    /// Start it (again) on the same port: with no persistence, empty, as after a crash.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.addr.port().to_string();
        let mut command = Command::new(REDIS_SERVER);
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca),
        };
        let child = command
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
        let Ok(mut conn) = self.client().get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    /// Run one command and give its answer.
    pub async fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut conn = self
            .client()
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
    node_on(&redis.url(), extra).await
}

/// A node with `--redis url` (one node, a cluster's seed, Sentinel's), healthy: its pub/sub
/// links up.
pub async fn node_on(url: &str, extra: &[&str]) -> TestServer {
    let mut args = vec!["--redis", url];
    args.extend_from_slice(extra);
    let server = TestServer::start(&args).await;
    until_health(&server, "ok").await;
    server
}

/// One stream per topic (`/sse/topics/NAME`) on `client`, in order.
pub async fn subscribe_each(client: &Client, topics: &[String]) -> Vec<Events> {
    let mut streams = Vec::new();
    for topic in topics {
        let (events, _) = client
            .subscribe(&format!("/sse/topics/{topic}"), None)
            .await;
        streams.push(events);
    }
    streams
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

/// Nothing else is on its way to these streams: a marker published on `topic` now is the very
/// next event each gets, and each is still open to get it. Events reach a stream in order, so
/// a repeat or a stray event sent before the marker would come first.
pub async fn marker_comes_next<'a>(
    streams: impl IntoIterator<Item = &'a mut Events>,
    poster: &Client,
    topic: &str,
) {
    let id = publish(poster, topic, "marker").await;
    for events in streams {
        let next = events.next().await.expect("the marker, the stream open");
        assert_eq!(
            (next.id, next.data.as_str()),
            (id.to_string(), "marker"),
            "the marker first: {:?}",
            next.event
        );
    }
}

/// A node on `url` without `--redis-ca`, where the system's roots do not know the CA: its link
/// tries and fails, it is never healthy, and a publish is refused rather than taken.
pub async fn untrusted_ca_is_refused(url: &str) {
    let untrusting = TestServer::start(&["--redis", url]).await;
    super::eventually("the link tried and failed", || {
        untrusting
            .state
            .hub
            .redis_status()
            .is_some_and(|status| status.link_failures >= 1)
    })
    .await;
    let client = untrusting.client(Via::H2c).await;
    let health = super::json(client.get("/healthz").await).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let answer = client.post("/api/topics/t/events", "text/plain", "x").await;
    assert_eq!(answer.status(), http::StatusCode::SERVICE_UNAVAILABLE);
}
