//! A real Redis Sentinel setup for one test: one master, two replicas and three sentinels on
//! free loopback ports, no persistence, every process killed when it is dropped. A test kills
//! the master and waits until the sentinels have promoted a replica. With TLS
//! ([`RedisSentinel::start_tls`]) every process speaks only TLS, one certificate for all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis::FromRedisValue;
use tempfile::TempDir;

use super::redis_nodes::{
    PortTaken, RedisProcess, START_ATTEMPTS, ask_with, free_ports, info_field, server_args,
    tls_server_args, until,
};
use super::redis_server::RedisTls;
use super::skip;

/// The Debian packages' binaries; `scripts/test.sh` installs them when missing.
const REDIS_SERVER: &str = "redis-server";
const REDIS_SENTINEL: &str = "redis-sentinel";

/// The name the sentinels monitor the master under: the path of [`RedisSentinel::url`].
pub const MASTER_NAME: &str = "mymaster";

const REPLICAS: usize = 2;
const SENTINELS: usize = 3;

/// Two sentinels must agree the master is down.
const QUORUM: usize = 2;
/// 2 s without an answer is down (Sentinel's default is 30 s), so a test's failover is quick.
const DOWN_AFTER_MS: u32 = 2000;
/// Sentinel's own limits on one failover; a failed one is tried again after twice this.
const FAILOVER_TIMEOUT_MS: u32 = 10_000;
/// Both replicas follow the new master at once.
const PARALLEL_SYNCS: usize = 2;

/// Six processes and both replicas' first sync, then the sentinels finding each other (they
/// say hello every 2 s), on a busy 2-core machine.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// Down after 2 s, the vote for a leader, the promotion, and every sentinel hearing of it. An
/// election that splits the votes is tried again only after twice the failover timeout (20 s).
const FAILOVER_PATIENCE: Duration = Duration::from_secs(60);

pub struct RedisSentinel {
    /// The first master, then its replicas, as started.
    servers: Vec<RedisProcess>,
    sentinels: Vec<RedisProcess>,
    /// With TLS only: the CA and the one certificate every process serves.
    pub tls: Option<RedisTls>,
    _dir: TempDir,
}

impl RedisSentinel {
    /// Start them and wait until both replicas' links are up and every sentinel knows both
    /// replicas and the two other sentinels (so a failover can happen at once). `None` when
    /// `SSELAB_TEST_SKIP` names `redis` (said on stderr): the test then returns.
    pub async fn start() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(false).await)
    }

    /// [`RedisSentinel::start`], every server and sentinel speaking only TLS (to each other
    /// too), their certificate from a CA of their own ([`RedisSentinel::tls`]).
    pub async fn start_tls() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(true).await)
    }

    async fn start_with(tls: bool) -> Self {
        for _ in 0..START_ATTEMPTS {
            if let Ok(setup) = Self::try_start(tls).await {
                return setup;
            }
        }
        panic!("Redis Sentinel on free ports: another process took one, {START_ATTEMPTS} times");
    }

    async fn try_start(tls: bool) -> Result<Self, PortTaken> {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = tls.then(RedisTls::make);
        let ca = tls.as_ref().map(|tls| tls.ca.clone());
        let ca = ca.as_deref();
        let ports = free_ports(1 + REPLICAS + SENTINELS, false);
        let (server_ports, sentinel_ports) = ports.split_at(1 + REPLICAS);
        let master_port = server_ports[0].to_string();
        let mut servers = Vec::new();
        for (i, port) in server_ports.iter().enumerate() {
            let mut args = match &tls {
                None => server_args(*port, dir.path()),
                Some(tls) => tls_server_args(*port, dir.path(), tls),
            };
            if i > 0 {
                args.extend(["--replicaof", "127.0.0.1", &master_port].map(str::to_string));
            }
            let server = RedisProcess::spawn(REDIS_SERVER, "redis-server", args, *port);
            servers.push(over_tls(server, ca));
        }
        for server in &mut servers {
            server.until_answers().await?;
        }
        // Links up first: a sentinel learns the replicas from the master's INFO, which it
        // reads again only every 10 s.
        until("both replicas' links are up", START_PATIENCE, async || {
            for replica in &servers[1..] {
                let info = ask_with::<String>(ca, replica.addr, &["INFO", "replication"]).await?;
                if info_field(&info, "master_link_status") != Some("up") {
                    return Err(format!("{}:\n{info}", replica.addr));
                }
            }
            Ok(())
        })
        .await;
        let mut sentinels = Vec::new();
        for port in sentinel_ports {
            let conf = write_conf(dir.path(), *port, &master_port, tls.as_ref());
            let sentinel = RedisProcess::spawn(REDIS_SENTINEL, "redis-sentinel", [conf], *port);
            sentinels.push(over_tls(sentinel, ca));
        }
        for sentinel in &mut sentinels {
            sentinel.until_answers().await?;
        }
        let setup = Self {
            servers,
            sentinels,
            tls,
            _dir: dir,
        };
        until(
            "every sentinel knows the others",
            START_PATIENCE,
            async || setup.ready().await,
        )
        .await;
        Ok(setup)
    }

    async fn ready(&self) -> Result<(), String> {
        for sentinel in &self.sentinels {
            let addr = sentinel.addr;
            for (what, want) in [("REPLICAS", REPLICAS), ("SENTINELS", SENTINELS - 1)] {
                let known = self
                    .ask::<Vec<HashMap<String, String>>>(addr, &["SENTINEL", what, MASTER_NAME])
                    .await?;
                let healthy = known.iter().filter(|peer| healthy(peer)).count();
                if healthy != want {
                    return Err(format!("{addr} knows {healthy} {what}: {known:?}"));
                }
            }
            // Enough sentinels reachable for the quorum and for electing a leader.
            self.ask::<String>(addr, &["SENTINEL", "CKQUORUM", MASTER_NAME])
                .await?;
        }
        Ok(())
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster` (`rediss+sentinel`
    /// with TLS).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        let scheme = if self.tls.is_some() {
            "rediss+sentinel"
        } else {
            "redis+sentinel"
        };
        format!("{scheme}://{}/{MASTER_NAME}", hosts.join(","))
    }

    pub fn sentinel_addrs(&self) -> Vec<SocketAddr> {
        self.sentinels.iter().map(|s| s.addr).collect()
    }

    /// The master, as the first sentinel that answers says.
    pub async fn master(&self) -> SocketAddr {
        for sentinel in &self.sentinels {
            if let Ok(addr) = master_by(self.ca(), sentinel.addr).await {
                return addr;
            }
        }
        panic!("no sentinel answered GET-MASTER-ADDR-BY-NAME {MASTER_NAME}");
    }

    /// SIGKILL the master, wait until the process is gone, and give its address (for
    /// [`RedisSentinel::until_failed_over`]).
    pub async fn kill_master(&mut self) -> SocketAddr {
        let master = self.master().await;
        self.servers
            .iter_mut()
            .find(|s| s.addr == master)
            .unwrap_or_else(|| panic!("the master {master} is not one of ours"))
            .kill()
            .await;
        master
    }

    /// Wait until every sentinel names one new master, not `dead`, and that node says
    /// `role:master`: a client may ask any sentinel. Gives it and how long this took.
    pub async fn until_failed_over(&self, dead: SocketAddr) -> (SocketAddr, Duration) {
        let began = Instant::now();
        let what = format!("the sentinels promote a replica of {dead}");
        let new_master = until(&what, FAILOVER_PATIENCE, async || {
            let mut agreed = None;
            for sentinel in &self.sentinels {
                let master = master_by(self.ca(), sentinel.addr).await?;
                if master == dead || *agreed.get_or_insert(master) != master {
                    return Err(format!("{} names {master}", sentinel.addr));
                }
            }
            let master = agreed.expect("three sentinels");
            let info = self.ask::<String>(master, &["INFO", "replication"]).await?;
            match info_field(&info, "role") {
                Some("master") => Ok(master),
                role => Err(format!("{master} says role {role:?}")),
            }
        })
        .await;
        (new_master, began.elapsed())
    }

    /// Send `args` to the node (or sentinel) at `addr` and give its answer; panics on an error.
    pub async fn command_on<T: FromRedisValue>(&self, addr: SocketAddr, args: &[&str]) -> T {
        super::redis_nodes::command_on_with(self.ca(), addr, args).await
    }

    /// The CA to trust with TLS.
    fn ca(&self) -> Option<&Path> {
        self.tls.as_ref().map(|tls| tls.ca.as_path())
    }

    async fn ask<T: FromRedisValue>(&self, addr: SocketAddr, args: &[&str]) -> Result<T, String> {
        ask_with(self.ca(), addr, args).await
    }
}

/// `process`, asked over TLS trusting `ca` when given.
fn over_tls(process: RedisProcess, ca: Option<&Path>) -> RedisProcess {
    match ca {
        None => process,
        Some(ca) => process.over_tls(ca),
    }
}

/// A sentinel's config, in `dir`: Sentinel rewrites it (what it learns of replicas, peers and
/// failovers), so it must be a file of its own it can write. With `tls`, it speaks only TLS, to
/// clients, the servers and the other sentinels alike.
fn write_conf(dir: &Path, port: u16, master_port: &str, tls: Option<&RedisTls>) -> PathBuf {
    let path = dir.join(format!("sentinel-{port}.conf"));
    let listen = match tls {
        None => format!("port {port}\n"),
        Some(tls) => format!(
            "port 0\ntls-port {port}\ntls-replication yes\ntls-auth-clients no\n\
             tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
            tls.cert.display(),
            tls.key.display(),
            tls.ca.display()
        ),
    };
    let text = format!(
        "{listen}bind 127.0.0.1\ndir {dir}\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {QUORUM}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
         sentinel parallel-syncs {MASTER_NAME} {PARALLEL_SYNCS}\n",
        dir = dir.display()
    );
    std::fs::write(&path, text).expect("write the sentinel's config");
    path
}

/// A replica or sentinel a sentinel reports, neither down nor disconnected.
fn healthy(peer: &HashMap<String, String>) -> bool {
    let flags = peer.get("flags").map(String::as_str).unwrap_or("");
    let bad = ["s_down", "o_down", "disconnected"];
    !flags.split(',').any(|f| bad.contains(&f))
        && peer
            .get("master-link-status")
            .is_none_or(|status| status == "ok")
}

/// `SENTINEL GET-MASTER-ADDR-BY-NAME` asked of one sentinel.
async fn master_by(ca: Option<&Path>, sentinel: SocketAddr) -> Result<SocketAddr, String> {
    let args = ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME];
    let (ip, port) = ask_with::<(String, u16)>(ca, sentinel, &args).await?;
    format!("{ip}:{port}")
        .parse()
        .map_err(|e| format!("{sentinel} named {ip}:{port}: {e}"))
}
