//! Which Redis sselab talks to: one node, a cluster found behind a seed node, or the master
//! Sentinel names. The rest of the backend sends its scripts through [`Commands`] whichever it
//! is; only the pub/sub link differs (one connection to the master, or one per shard).
//!
//! - `redis://HOST:PORT` (`rediss://` for TLS): asked `INFO cluster` on first contact; a node
//!   with `cluster_enabled:1` is a seed, and the cluster's topology is read from it (nothing
//!   else to configure). Found once, on the first contact that succeeds: a Redis that is down
//!   when sselab starts is waited for, as before.
//! - `redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER` (`rediss+sentinel://` for TLS to the
//!   Sentinels and the master alike, both checked against `--redis-ca` when given): the master
//!   is asked of the Sentinels on first use, and again after any command to it failed (a
//!   failover moves it; a demoted master answers writes with `READONLY`).

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, ConnectionAddr, Pipeline, RedisFuture, TlsCertificates, Value};
use tokio::sync::OnceCell;

use crate::sync::lock;

/// How long a command may take before the publish answers 503.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to a node may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Retries of a lost command connection before the caller is answered: one, so a publish
/// fails fast when Redis is down instead of holding the request.
const COMMAND_RETRIES: usize = 1;
/// Sentinel's own port when an address names none (`redis-sentinel`'s default).
const SENTINEL_PORT: u16 = 26379;

/// What `--redis` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One node, or a cluster's seed node: which one is found on connecting.
    Node(String),
    /// The master Sentinel names `master`.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        tls: bool,
    },
}

impl Target {
    /// Read `--redis`: `redis://`, `rediss://`, `redis+sentinel://` or `rediss+sentinel://`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let sentinel = url
            .strip_prefix("redis+sentinel://")
            .map(|rest| (rest, false))
            .or_else(|| url.strip_prefix("rediss+sentinel://").map(|r| (r, true)));
        let Some((rest, tls)) = sentinel else {
            redis::parse_redis_url(url).ok_or_else(|| format!("{url:?} is not a Redis URL"))?;
            return Ok(Self::Node(url.to_string()));
        };
        let (hosts, master) = rest
            .split_once('/')
            .ok_or("a Sentinel URL ends with /MASTER (the name Sentinel monitors it under)")?;
        if master.is_empty() || master.contains(['/', '?', '#']) {
            return Err(format!("{master:?} is not a master name"));
        }
        let sentinels = hosts
            .split(',')
            .map(|host| match host.rsplit_once(':') {
                None if !host.is_empty() => Ok((host.to_string(), SENTINEL_PORT)),
                Some((name, port)) if !name.is_empty() => port
                    .parse()
                    .map(|port| (name.to_string(), port))
                    .map_err(|_| format!("{host:?}: the port is not a number")),
                _ => Err(format!("{host:?} is not HOST:PORT")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Sentinel {
            sentinels,
            master: master.to_string(),
            tls,
        })
    }
}

/// A handle that runs commands and scripts on whichever Redis this is; cheap to clone.
#[derive(Clone)]
pub(super) enum Commands {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Node(_) => "Commands::Node",
            Self::Cluster(_) => "Commands::Cluster",
        })
    }
}

/// What the first contact found.
enum Mode {
    Node {
        client: Box<redis::Client>,
        commands: ConnectionManager,
    },
    Cluster {
        commands: Box<ClusterConnection>,
    },
    Sentinel,
}

/// The Redis behind `--redis`, found on first contact.
pub(super) struct Backend {
    target: Target,
    ca: Option<Vec<u8>>,
    mode: OnceCell<Mode>,
    /// Sentinel only: the Sentinels, asked one at a time.
    sentinel: tokio::sync::Mutex<Option<SentinelClient>>,
    /// Sentinel only: the master last named, until a command to it fails.
    master: Mutex<Option<(redis::Client, ConnectionManager)>>,
    /// Cluster only: the masters last seen (`host:port`), seeds for new connections beside
    /// the first seed, which may be the master that failed.
    known: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Which kind of Redis this is, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Cluster,
    Sentinel,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Cluster => "cluster",
            Self::Sentinel => "sentinel",
        }
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(COMMAND_RETRIES)
}

impl Backend {
    /// Check `--redis` (a bad URL fails here) without connecting.
    pub(super) fn new(url: &str, ca: Option<Vec<u8>>) -> Result<Self, String> {
        let target = Target::parse(url)?;
        if let Target::Node(url) = &target {
            node_client(url, ca.as_deref()).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            target,
            ca,
            mode: OnceCell::new(),
            sentinel: tokio::sync::Mutex::new(None),
            master: Mutex::new(None),
            known: Mutex::new(Vec::new()),
        })
    }

    /// Which kind of Redis this is; `None` until the first contact succeeded.
    pub(super) fn kind(&self) -> Option<Kind> {
        self.mode.get().map(|mode| match mode {
            Mode::Node { .. } => Kind::Node,
            Mode::Cluster { .. } => Kind::Cluster,
            Mode::Sentinel => Kind::Sentinel,
        })
    }

    async fn mode(&self) -> Result<&Mode, String> {
        self.mode.get_or_try_init(|| self.first_contact()).await
    }

    /// Sentinel: nothing to ask. A node: whether it is a cluster's.
    async fn first_contact(&self) -> Result<Mode, String> {
        let url = match &self.target {
            Target::Sentinel { .. } => return Ok(Mode::Sentinel),
            Target::Node(url) => url,
        };
        let client = node_client(url, self.ca.as_deref()).map_err(|e| e.to_string())?;
        let info: String = tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut conn)
                .await
        })
        .await
        .map_err(|_| "no answer to INFO cluster".to_string())?
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
        if !info.lines().any(|line| line.trim() == "cluster_enabled:1") {
            let commands =
                ConnectionManager::new_lazy_with_config(client.clone(), manager_config())
                    .map_err(|e| e.to_string())?;
            return Ok(Mode::Node {
                client: Box::new(client),
                commands,
            });
        }
        let client = cluster_client(vec![url.clone()], self.ca.as_deref(), None)?;
        let commands = client
            .get_async_connection()
            .await
            .map_err(|e| format!("cluster at {url}: {e}"))?;
        tracing::info!(
            seed = url,
            "redis: a cluster; its topology is read from the seed"
        );
        Ok(Mode::Cluster {
            commands: Box::new(commands),
        })
    }

    /// A handle for commands and scripts, connecting first if need be.
    pub(super) async fn commands(&self) -> Result<Commands, String> {
        match self.mode().await? {
            Mode::Node { commands, .. } => Ok(Commands::Node(commands.clone())),
            Mode::Cluster { commands } => Ok(Commands::Cluster(commands.as_ref().clone())),
            Mode::Sentinel => Ok(Commands::Node(self.master().await?.1)),
        }
    }

    /// A command failed: with Sentinel, ask it for the master again next time.
    pub(super) fn failed(&self) {
        lock(&self.master).take();
    }

    /// The master's client (one node, or Sentinel's master now), for the one pub/sub
    /// connection; `None` on a cluster, whose pub/sub is per shard.
    pub(super) async fn master_client(&self) -> Result<Option<redis::Client>, String> {
        match self.mode().await? {
            Mode::Node { client, .. } => Ok(Some(client.as_ref().clone())),
            Mode::Cluster { .. } => Ok(None),
            Mode::Sentinel => Ok(Some(self.master().await?.0)),
        }
    }

    /// The cluster's masters now (`host:port`): seeds for connections made from now on.
    pub(super) fn learn(&self, masters: Vec<String>) {
        *lock(&self.known) = masters;
    }

    /// Whether the node at `addr` (`host:port`) answers `PING` on a connection of its own.
    pub(super) async fn answers(&self, addr: &str) -> bool {
        let Some(url) = self.url_of(addr) else {
            return false;
        };
        let Ok(client) = node_client(&url, self.ca.as_deref()) else {
            return false;
        };
        let ping = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        matches!(tokio::time::timeout(CONNECT_TIMEOUT, ping).await, Ok(Ok(_)))
    }

    /// The URL of the cluster node at `addr` (`host:port`), in the seed's scheme (`redis` or
    /// `rediss`); `None` with Sentinel.
    fn url_of(&self, addr: &str) -> Option<String> {
        let Target::Node(seed) = &self.target else {
            return None;
        };
        let scheme = seed.split_once("://").map_or("redis", |(scheme, _)| scheme);
        Some(format!("{scheme}://{addr}"))
    }

    /// The first seed and the masters last seen.
    fn seeds(&self) -> Result<Vec<String>, String> {
        let Target::Node(seed) = &self.target else {
            return Err("not a cluster".into());
        };
        let mut seeds = vec![seed.clone()];
        seeds.extend(lock(&self.known).iter().filter_map(|m| self.url_of(m)));
        Ok(seeds)
    }

    /// A cluster connection of its own with RESP3 pushes sent to `pushes` (the cluster's
    /// sharded pub/sub).
    pub(super) async fn cluster_pubsub(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> Result<ClusterConnection, String> {
        let Mode::Cluster { .. } = self.mode().await? else {
            return Err("not a cluster".into());
        };
        let client = cluster_client(self.seeds()?, self.ca.as_deref(), Some(pushes))?;
        client
            .get_async_connection()
            .await
            .map_err(|e| format!("cluster pub/sub: {e}"))
    }

    /// A dedicated connection (not shared with any other caller), for a command that blocks
    /// the connection it is sent on (`WAIT`).
    pub(super) async fn dedicated(&self) -> Result<Commands, String> {
        match self.mode().await? {
            Mode::Node { client, .. } => {
                ConnectionManager::new_with_config(client.as_ref().clone(), manager_config())
                    .await
                    .map(Commands::Node)
                    .map_err(|e| e.to_string())
            }
            Mode::Cluster { .. } => cluster_client(self.seeds()?, self.ca.as_deref(), None)?
                .get_async_connection()
                .await
                .map(Commands::Cluster)
                .map_err(|e| e.to_string()),
            Mode::Sentinel => {
                let client = self.master().await?.0;
                ConnectionManager::new_with_config(client, manager_config())
                    .await
                    .map(Commands::Node)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Sentinel's master: the one last named, or asked for now.
    async fn master(&self) -> Result<(redis::Client, ConnectionManager), String> {
        if let Some(master) = lock(&self.master).clone() {
            return Ok(master);
        }
        let mut sentinel = self.sentinel.lock().await;
        if sentinel.is_none() {
            *sentinel = Some(self.sentinel_client()?);
        }
        let Some(client) = sentinel.as_mut() else {
            return Err("no Sentinel client".into());
        };
        let master = tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, async {
            client.async_get_client().await
        })
        .await
        .map_err(|_| "the Sentinels did not name a master in time".to_string())?
        .map_err(|e| format!("the Sentinels did not name a master: {e}"))?;
        let commands = ConnectionManager::new_with_config(master.clone(), manager_config())
            .await
            .map_err(|e| format!("the master the Sentinels named: {e}"))?;
        tracing::info!(master = ?master.get_connection_info().addr(), "redis: the master Sentinel names");
        *lock(&self.master) = Some((master.clone(), commands.clone()));
        Ok((master, commands))
    }

    fn sentinel_client(&self) -> Result<SentinelClient, String> {
        let Target::Sentinel {
            sentinels,
            master,
            tls,
        } = &self.target
        else {
            return Err("not a Sentinel URL".into());
        };
        let addrs = sentinels.iter().map(|(host, port)| match tls {
            false => ConnectionAddr::Tcp(host.clone(), *port),
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
        });
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(|e| e.to_string())?;
        if *tls {
            builder = builder
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
            if let Some(ca) = &self.ca {
                builder = builder
                    .set_client_to_redis_certificates(certificates(ca))
                    .set_client_to_sentinel_certificates(certificates(ca));
            }
        }
        builder.build().map_err(|e| e.to_string())
    }
}

fn certificates(ca: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    }
}

/// A client for one node; `ca` (PEM) is the only root a `rediss://` node is checked against.
fn node_client(url: &str, ca: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    match ca {
        None => redis::Client::open(url),
        Some(ca) => redis::Client::build_with_tls(url, certificates(ca)),
    }
}

/// A cluster client seeded with `seeds` (with RESP3 pushes to `pushes`, for pub/sub).
fn cluster_client(
    seeds: Vec<String>,
    ca: Option<&[u8]>,
    pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> Result<ClusterClient, String> {
    let first = seeds.first().cloned().unwrap_or_default();
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(COMMAND_RETRIES as u32);
    if let Some(ca) = ca {
        builder = builder.certs(certificates(ca));
    }
    if let Some(pushes) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
    }
    builder
        .build()
        .map_err(|e| format!("cluster at {first}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_and_master() {
        assert_eq!(
            Target::parse("redis+sentinel://127.0.0.1:26379,h2:26380/mymaster"),
            Ok(Target::Sentinel {
                sentinels: vec![("127.0.0.1".into(), 26379), ("h2".into(), 26380)],
                master: "mymaster".into(),
                tls: false,
            })
        );
        assert_eq!(
            Target::parse("rediss+sentinel://s1/m"),
            Ok(Target::Sentinel {
                sentinels: vec![("s1".into(), SENTINEL_PORT)],
                master: "m".into(),
                tls: true,
            })
        );
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379"),
            Ok(Target::Node("redis://127.0.0.1:6379".into()))
        );
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:x/m",
            "redis+sentinel://:1/m",
            "redis+sentinel://h:1,/m",
            "http://h:1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
