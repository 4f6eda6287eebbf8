//! What the Redis Cluster and Sentinel harnesses share: ports picked apart from other tests',
//! `redis-server`/`redis-sentinel` processes that die with the test, and one command sent to one
//! node. The one-server helper is `redis_server.rs`; this is for the many-process setups.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use redis::{AsyncConnectionConfig, FromRedisValue};
use tokio::process::{Child, Command};

use super::PATIENCE;
use super::redis_server::RedisTls;

/// How often a harness asks its nodes whether they are there yet.
pub const POLL: Duration = Duration::from_millis(50);

/// How many times a whole start is tried again because a port it picked was taken by another
/// test between the check and the bind.
pub const START_ATTEMPTS: usize = 5;

/// Redis's cluster bus listens on the client port + 10000 (fixed by Redis).
const BUS_OFFSET: u16 = 10000;

/// The lowest port we pick: clear of the well-known and registered services below it.
const LOWEST_PORT: u16 = 10000;

/// Above this a cluster port's bus port would not exist (65535 - [`BUS_OFFSET`]).
const PORT_CEILING: u16 = 55536;

/// Linux's default ephemeral range starts here; ports below it are never handed out for port 0,
/// so the other tests' port-0 listeners (sselab, the one-server Redis) cannot take ours.
const DEFAULT_EPHEMERAL_START: u16 = 32768;

/// Ports for `count` nodes, each free on loopback now, and with `cluster_bus` its port + 10000
/// free too. Random within the range below the ephemeral ports, so two tests starting at once
/// rarely pick the same; a start that loses the race anyway is tried again (see
/// [`RedisProcess::until_answers`]).
pub fn free_ports(count: usize, cluster_bus: bool) -> Vec<u16> {
    let ceiling = ephemeral_start();
    let top = if cluster_bus {
        ceiling - BUS_OFFSET
    } else {
        ceiling
    };
    let mut ports = Vec::with_capacity(count);
    let mut taken = HashSet::<u16>::new();
    for _ in 0..100_000 {
        if ports.len() == count {
            return ports;
        }
        let port = fastrand::u16(LOWEST_PORT..top);
        let needs: &[u16] = if cluster_bus {
            &[port, port + BUS_OFFSET]
        } else {
            &[port]
        };
        if needs.iter().all(|p| !taken.contains(p) && bindable(*p)) {
            taken.extend(needs.iter().copied());
            ports.push(port);
        }
    }
    panic!("{count} free loopback ports in {LOWEST_PORT}..{top}");
}

/// Where the kernel's ephemeral ports start, kept high enough for a cluster's bus ports below it.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
        .clamp(LOWEST_PORT + BUS_OFFSET + 1000, PORT_CEILING)
}

fn bindable(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The flags every harness `redis-server` shares: loopback, no persistence, small stream nodes
/// (as [`super::redis_server::RedisServer`]), a replica's full sync started at once (Redis
/// waits 5 s for more replicas to share it), `DEBUG SLEEP` allowed (Redis 7 refuses `DEBUG`
/// unless told; a test stalls a node with it), and its files in `dir`: a replica's first sync
/// writes an RDB there, named per port so replicas sharing `dir` do not clash.
pub fn server_args(port: u16, dir: &Path) -> Vec<String> {
    let mut args = vec!["--port".to_string(), port.to_string()];
    args.extend(shared_args(port, dir));
    args
}

/// [`server_args`] speaking only TLS on `port` (no plain port), replicas' links too, with
/// `tls`'s certificate; clients are not asked for one. A cluster adds `--tls-cluster yes`.
pub fn tls_server_args(port: u16, dir: &Path, tls: &RedisTls) -> Vec<String> {
    let mut args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-replication",
        "yes",
        "--tls-auth-clients",
        "no",
    ]
    .map(str::to_string)
    .into();
    for (flag, file) in [
        ("--tls-cert-file", &tls.cert),
        ("--tls-key-file", &tls.key),
        ("--tls-ca-cert-file", &tls.ca),
    ] {
        args.extend([flag.to_string(), file.display().to_string()]);
    }
    args.extend(shared_args(port, dir));
    args
}

fn shared_args(port: u16, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--stream-node-max-entries",
        "10",
        "--repl-diskless-sync-delay",
        "0",
        "--enable-debug-command",
        "local",
        "--dbfilename",
        &format!("dump-{port}.rdb"),
        "--dir",
    ]
    .map(str::to_string)
    .into();
    args.push(dir.display().to_string());
    args
}

/// A node's port was taken by another process before it could bind it: start again elsewhere.
#[derive(Debug)]
pub struct PortTaken;

/// One `redis-server` or `redis-sentinel` of a harness, killed (SIGKILL) when dropped.
pub struct RedisProcess {
    pub addr: SocketAddr,
    child: Option<Child>,
    /// With TLS: the CA its certificate is checked against.
    ca: Option<PathBuf>,
}

impl RedisProcess {
    /// Start `program` with `args`; it is to listen on `port`. `package` is the Debian package
    /// to install when the program is missing.
    pub fn spawn(
        program: &str,
        package: &str,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        port: u16,
    ) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} did not start ({e}): apt-get install {package}"));
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: Some(child),
            ca: None,
        }
    }

    /// It speaks only TLS, with a certificate `ca` signed: asked (and named) over `rediss://`.
    pub fn over_tls(mut self, ca: &Path) -> Self {
        self.ca = Some(ca.to_path_buf());
        self
    }

    pub fn url(&self) -> String {
        url(self.addr, self.ca.as_deref())
    }

    /// Whether it has not been killed.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL it (no shutdown, no goodbye to its peers: a crash) and wait until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill a redis process");
        }
    }

    /// Wait until it answers, as itself (its `process_id`: not another test's node that holds
    /// the port); [`PortTaken`] when it exited first, which is what Redis does when it cannot
    /// bind its port (or its cluster bus port).
    pub async fn until_answers(&mut self) -> Result<(), PortTaken> {
        let child = self.child.as_mut().expect("a process not killed");
        let pid = child.id().expect("a running process has an id");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if child.try_wait().expect("the process's status").is_some() {
                return Err(PortTaken);
            }
            let info =
                try_command_with::<String>(self.ca.as_deref(), self.addr, &["INFO", "server"]);
            if let Some(info) = info.await {
                return match info_field(&info, "process_id") {
                    Some(id) if id == pid.to_string() => Ok(()),
                    _ => Err(PortTaken),
                };
            }
            assert!(Instant::now() < deadline, "{} answers INFO", self.addr);
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Send `args` to the node at `addr` and give its answer; panics on an error. No response
/// timeout (the redis crate's default is 500 ms), so `DEBUG SLEEP 5` or `WAIT 1 3000` get their
/// answer.
pub async fn command_on<T: FromRedisValue>(addr: SocketAddr, args: &[&str]) -> T {
    command_on_with(None, addr, args).await
}

/// [`command_on`] over TLS when `ca` is given (the CA the node's certificate is checked against).
pub async fn command_on_with<T: FromRedisValue>(
    ca: Option<&Path>,
    addr: SocketAddr,
    args: &[&str],
) -> T {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(None);
    let mut conn = client(addr, ca)
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    command(args)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?} on {addr}: {e}"))
}

/// How long a poll waits for one node's answer: a node a test put to sleep (`DEBUG SLEEP`) or
/// killed must not hold the poll up.
const POLL_ANSWER: Duration = Duration::from_secs(1);

/// [`command_on`] for a poll: `None` when the node is down, slow, or answers an error.
pub async fn try_command<T: FromRedisValue>(addr: SocketAddr, args: &[&str]) -> Option<T> {
    try_command_with(None, addr, args).await
}

/// [`try_command`] over TLS when `ca` is given.
pub async fn try_command_with<T: FromRedisValue>(
    ca: Option<&Path>,
    addr: SocketAddr,
    args: &[&str],
) -> Option<T> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(POLL_ANSWER))
        .set_response_timeout(Some(POLL_ANSWER));
    let mut conn = client(addr, ca)
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    command(args).query_async(&mut conn).await.ok()
}

/// [`try_command`] in a wait: a node that does not answer (yet) is a reason to wait, said.
pub async fn ask<T: FromRedisValue>(addr: SocketAddr, args: &[&str]) -> Result<T, String> {
    ask_with(None, addr, args).await
}

/// [`ask`] over TLS when `ca` is given.
pub async fn ask_with<T: FromRedisValue>(
    ca: Option<&Path>,
    addr: SocketAddr,
    args: &[&str],
) -> Result<T, String> {
    try_command_with(ca, addr, args)
        .await
        .ok_or_else(|| format!("{addr} does not answer {args:?}"))
}

/// `redis://ADDR`, or `rediss://ADDR` with TLS (`ca` given).
pub fn url(addr: SocketAddr, ca: Option<&Path>) -> String {
    let scheme = if ca.is_some() { "rediss" } else { "redis" };
    format!("{scheme}://{addr}")
}

/// A client for the node at `addr`; over TLS trusting only `ca` when it is given.
fn client(addr: SocketAddr, ca: Option<&Path>) -> redis::Client {
    match ca {
        None => redis::Client::open(url(addr, None)),
        Some(ca) => redis::Client::build_with_tls(
            url(addr, Some(ca)),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(ca).expect("the CA file")),
            },
        ),
    }
    .expect("a redis url")
}

fn command(args: &[&str]) -> redis::Cmd {
    let (name, rest) = args.split_first().expect("a command name");
    let mut cmd = redis::cmd(name);
    for arg in rest {
        cmd.arg(*arg);
    }
    cmd
}

/// The value of `name` in an `INFO` answer (`name:value` lines).
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim_end().strip_prefix(name)?.strip_prefix(':'))
}

/// Wait until `check` says `Ok` (polling every [`POLL`]) and give its value; after `patience`,
/// panic with `what` and the last reason `check` gave for not yet.
pub async fn until<T>(
    what: &str,
    patience: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + patience;
    loop {
        let reason = match check().await {
            Ok(value) => return value,
            Err(reason) => reason,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not after {patience:?}: {reason}"
        );
        tokio::time::sleep(POLL).await;
    }
}
