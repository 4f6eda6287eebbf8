//! A real Redis Cluster for one test: 3 masters with 2 replicas each (9 `redis-server`s) on
//! free loopback ports, no persistence, every process killed when it is dropped. A test kills
//! the master of a key's slot and waits until a replica serves those slots instead.
//!
//! With TLS ([`RedisCluster::start_tls`]): 3 masters and no replicas, speaking only TLS to
//! clients and to each other, one certificate for all from one CA.
//!
//! Who replicates whom is `redis-cli --cluster create`'s choice, so the harness asks the cluster
//! (`CLUSTER NODES`) rather than assuming it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::{Duration, Instant};

use redis::FromRedisValue;
use tempfile::TempDir;

use super::redis_cluster_view::{NodeEntry, parse_nodes, serving, shards};
use super::redis_nodes::{
    PortTaken, RedisProcess, START_ATTEMPTS, ask_with, free_ports, info_field, server_args,
    tls_server_args, try_command_with, until,
};
use super::redis_server::RedisTls;
use super::skip;

/// The Debian package's binaries; `scripts/test.sh` installs them when missing.
const REDIS_SERVER: &str = "redis-server";
const REDIS_CLI: &str = "redis-cli";

const MASTERS: usize = 3;
const REPLICAS_PER_MASTER: usize = 2;

/// How long a node may not answer its peers before it is failing: short, so a test's failover
/// takes seconds (Redis's default is 15 s).
const NODE_TIMEOUT_MS: &str = "2000";

/// Nine processes, the create, every replica's first sync, on a busy 2-core machine.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// The node timeout, the vote that marks the master failed, the replicas' election (up to a
/// second or two of random delay by rank) and the news reaching every node, with room to spare.
const FAILOVER_PATIENCE: Duration = Duration::from_secs(30);

pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
    replicas_per_master: usize,
    /// With TLS only: the CA and the one certificate every node serves.
    pub tls: Option<RedisTls>,
    /// The masters as the cluster was created: the seeds [`RedisCluster::seed_url`] offers.
    first_masters: Vec<SocketAddr>,
    /// Each master killed by [`RedisCluster::kill_master_of`], with the slots it served then.
    killed: Vec<(SocketAddr, Vec<RangeInclusive<u16>>)>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Start 9 nodes, make them a cluster, and wait until every node says it is ok, knows all
    /// nine, and every replica's link to its master is up (so a failover can happen at once).
    /// `None` when `SSELAB_TEST_SKIP` names `redis` (said on stderr): the test then returns.
    pub async fn start() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(REPLICAS_PER_MASTER, false).await)
    }

    /// 3 masters, no replicas (nothing is killed over TLS), speaking only TLS (`rediss://`,
    /// `tls-cluster`), their certificate from a CA of their own ([`RedisCluster::tls`]).
    pub async fn start_tls() -> Option<Self> {
        if skip::skipped("redis") {
            return None;
        }
        Some(Self::start_with(0, true).await)
    }

    async fn start_with(replicas_per_master: usize, tls: bool) -> Self {
        for _ in 0..START_ATTEMPTS {
            if let Ok(cluster) = Self::try_start(replicas_per_master, tls).await {
                return cluster;
            }
        }
        panic!("a Redis Cluster on free ports: another process took one, {START_ATTEMPTS} times");
    }

    async fn try_start(replicas_per_master: usize, tls: bool) -> Result<Self, PortTaken> {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = tls.then(RedisTls::make);
        let count = MASTERS * (1 + replicas_per_master);
        let mut nodes: Vec<RedisProcess> = free_ports(count, true)
            .into_iter()
            .map(|port| {
                let conf = dir.path().join(format!("nodes-{port}.conf"));
                let mut args = match &tls {
                    None => server_args(port, dir.path()),
                    Some(tls) => tls_server_args(port, dir.path(), tls),
                };
                if tls.is_some() {
                    args.extend(["--tls-cluster", "yes"].map(str::to_string));
                }
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        NODE_TIMEOUT_MS,
                        // Any replica may be promoted, however long its link has been down.
                        "--cluster-replica-validity-factor",
                        "0",
                        "--cluster-config-file",
                    ]
                    .map(str::to_string),
                );
                args.push(conf.display().to_string());
                let node = RedisProcess::spawn(REDIS_SERVER, "redis-server", args, port);
                match &tls {
                    None => node,
                    Some(tls) => node.over_tls(&tls.ca),
                }
            })
            .collect();
        for node in &mut nodes {
            node.until_answers().await?;
        }
        create(
            &nodes,
            replicas_per_master,
            tls.as_ref().map(|t| t.ca.as_path()),
        )
        .await;
        let mut cluster = Self {
            nodes,
            replicas_per_master,
            tls,
            first_masters: Vec::new(),
            killed: Vec::new(),
            _dir: dir,
        };
        let shards = until("the cluster is ready", START_PATIENCE, async || {
            cluster.ready().await
        })
        .await;
        cluster.first_masters = shards.into_keys().collect();
        Ok(cluster)
    }

    /// The shards (master → replicas) when every node is ready and sees the same ones.
    async fn ready(&self) -> Result<BTreeMap<SocketAddr, Vec<SocketAddr>>, String> {
        let mut agreed = None;
        for node in &self.nodes {
            let info = self.ask::<String>(node.addr, &["CLUSTER", "INFO"]).await?;
            let all = self.nodes.len().to_string();
            for (field, want) in [("cluster_state", "ok"), ("cluster_known_nodes", &*all)] {
                let value = info_field(&info, field);
                if value != Some(want) {
                    return Err(format!("{} says {field}:{value:?}", node.addr));
                }
            }
            let view = parse_nodes(&self.ask::<String>(node.addr, &["CLUSTER", "NODES"]).await?);
            let shards = shards(&view);
            let whole = view.len() == self.nodes.len() && view.iter().all(|n| n.flags_settled());
            let complete = shards.len() == MASTERS
                && shards.values().all(|r| r.len() == self.replicas_per_master);
            if !whole || !complete {
                return Err(format!("{} sees {shards:?} in\n{view:#?}", node.addr));
            }
            if agreed.get_or_insert_with(|| shards.clone()) != &shards {
                return Err(format!("{} sees {shards:?}, not {agreed:?}", node.addr));
            }
        }
        let shards = agreed.expect("the nodes");
        for (master, replicas) in &shards {
            for replica in replicas {
                let info = self
                    .ask::<String>(*replica, &["INFO", "replication"])
                    .await?;
                let port = master.port().to_string();
                if info_field(&info, "master_port") != Some(port.as_str())
                    || info_field(&info, "master_link_status") != Some("up")
                {
                    return Err(format!("{replica}'s link to {master}:\n{info}"));
                }
            }
        }
        Ok(shards)
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS) of a master the cluster was created with, one still running:
    /// any node works as a cluster client's seed.
    pub fn seed_url(&self) -> String {
        let seed = self
            .first_masters
            .iter()
            .find(|addr| self.running(**addr))
            .or_else(|| self.live().next().map(|node| &node.addr))
            .expect("a node still running");
        super::redis_nodes::url(*seed, self.ca())
    }

    /// `redis://` (`rediss://`) URLs of every node still running.
    pub fn urls(&self) -> Vec<String> {
        self.live().map(RedisProcess::url).collect()
    }

    /// The masters serving slots now, as a running node sees them, in slot order.
    pub async fn masters(&self) -> Vec<SocketAddr> {
        let mut view = self.view().await;
        view.retain(|n| n.is_master() && !n.slots.is_empty() && !n.failing());
        view.sort_by_key(|n| *n.slots[0].start());
        view.into_iter().map(|n| n.addr).collect()
    }

    /// The replicas of `master` that the cluster does not think failed.
    pub async fn replicas_of(&self, master: SocketAddr) -> Vec<SocketAddr> {
        let view = self.view().await;
        let id = &view
            .iter()
            .find(|n| n.addr == master)
            .unwrap_or_else(|| panic!("{master} is not in the cluster"))
            .id;
        let mut replicas: Vec<SocketAddr> = view
            .iter()
            .filter(|n| n.master_id.as_ref() == Some(id) && !n.failing())
            .map(|n| n.addr)
            .collect();
        replicas.sort();
        replicas
    }

    /// Names `{prefix}0`, `{prefix}1`… of channels of `kind` (`topic`, `session`), one on each
    /// master, in the order found: channel `kind:NAME` hashes by `{kind:NAME}`.
    pub async fn one_name_per_master(&self, kind: &str, prefix: &str) -> Vec<String> {
        let masters = self.masters().await.len();
        let mut seen = std::collections::BTreeSet::new();
        let mut names = Vec::new();
        for n in 0.. {
            let name = format!("{prefix}{n}");
            if seen.insert(self.master_of(&format!("{{{kind}:{name}}}")).await) {
                names.push(name);
            }
            if seen.len() == masters {
                break;
            }
        }
        names
    }

    /// The master that serves `key`'s slot now (even one failing, until its replica takes over).
    pub async fn master_of(&self, key: &str) -> SocketAddr {
        let slot = self.keyslot(key).await;
        let view = self.view().await;
        serving(&view, slot)
            .unwrap_or_else(|| panic!("no master serves slot {slot} of {key:?} in\n{view:#?}"))
            .addr
    }

    /// SIGKILL the master serving `key`'s slot, wait until the process is gone, and give its
    /// address (for [`RedisCluster::until_failed_over`]).
    pub async fn kill_master_of(&mut self, key: &str) -> SocketAddr {
        let slot = self.keyslot(key).await;
        let view = self.view().await;
        let master = serving(&view, slot)
            .unwrap_or_else(|| panic!("no master serves slot {slot} of {key:?}"));
        self.killed.push((master.addr, master.slots.clone()));
        self.kill(master.addr).await;
        master.addr
    }

    /// SIGKILL the node at `addr` (a replica, say) and wait until the process is gone.
    pub async fn kill(&mut self, addr: SocketAddr) {
        let node = self.nodes.iter_mut().find(|n| n.addr == addr);
        node.unwrap_or_else(|| panic!("{addr} is not a node of this cluster"))
            .kill()
            .await;
    }

    /// Wait until every running node says `cluster_state:ok` and that one other master serves
    /// all the slots `dead` (killed by [`RedisCluster::kill_master_of`]) served: a client may
    /// ask any of them. Gives that master and how long this took.
    pub async fn until_failed_over(&self, dead: SocketAddr) -> (SocketAddr, Duration) {
        let (_, slots) = self
            .killed
            .iter()
            .find(|(addr, _)| *addr == dead)
            .unwrap_or_else(|| panic!("{dead} was not killed by kill_master_of"));
        let began = Instant::now();
        let what = format!("a replica of {dead} serves its slots");
        let new_master = until(&what, FAILOVER_PATIENCE, async || {
            self.failed_over(dead, slots).await
        })
        .await;
        (new_master, began.elapsed())
    }

    async fn failed_over(
        &self,
        dead: SocketAddr,
        slots: &[RangeInclusive<u16>],
    ) -> Result<SocketAddr, String> {
        let mut agreed = None;
        for node in self.live() {
            let info = self.ask::<String>(node.addr, &["CLUSTER", "INFO"]).await?;
            if info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("{} is not ok yet", node.addr));
            }
            let view = parse_nodes(&self.ask::<String>(node.addr, &["CLUSTER", "NODES"]).await?);
            for slot in slots.iter().flat_map(|r| [*r.start(), *r.end()]) {
                let owner = serving(&view, slot).map(|n| n.addr);
                let Some(owner) = owner.filter(|o| *o != dead) else {
                    return Err(format!("{} sees slot {slot} on {owner:?}", node.addr));
                };
                if *agreed.get_or_insert(owner) != owner {
                    return Err(format!("{} sees slot {slot} on {owner}", node.addr));
                }
            }
        }
        Ok(agreed.expect("a node still running"))
    }

    /// Send `args` to the node at `addr` (`INFO replication`, `WAIT`, `DEBUG SLEEP`, `CLIENT
    /// PAUSE` …) and give its answer; panics on an error.
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

    fn live(&self) -> impl Iterator<Item = &RedisProcess> {
        self.nodes.iter().filter(|n| n.running())
    }

    fn running(&self, addr: SocketAddr) -> bool {
        self.live().any(|n| n.addr == addr)
    }

    /// `CLUSTER NODES` from the first running node that answers.
    async fn view(&self) -> Vec<NodeEntry> {
        parse_nodes(&self.ask_any::<String>(&["CLUSTER", "NODES"]).await)
    }

    async fn keyslot(&self, key: &str) -> u16 {
        self.ask_any(&["CLUSTER", "KEYSLOT", key]).await
    }

    async fn ask_any<T: FromRedisValue>(&self, args: &[&str]) -> T {
        for node in self.live() {
            if let Some(answer) = try_command_with(self.ca(), node.addr, args).await {
                return answer;
            }
        }
        panic!("no running node answered {args:?}");
    }
}

/// `redis-cli --cluster create`: slots spread over three masters, `replicas` each; over TLS
/// trusting `ca` when given.
async fn create(nodes: &[RedisProcess], replicas: usize, ca: Option<&Path>) {
    let mut command = tokio::process::Command::new(REDIS_CLI);
    if let Some(ca) = ca {
        command.arg("--tls").arg("--cacert").arg(ca);
    }
    let output = command
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|n| n.addr.to_string()))
        .args(["--cluster-replicas", &replicas.to_string()])
        .arg("--cluster-yes")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(START_PATIENCE, output)
        .await
        .expect("redis-cli --cluster create in time")
        .unwrap_or_else(|e| panic!("{REDIS_CLI} did not start ({e}): apt-get install redis-tools"));
    assert!(
        output.status.success(),
        "redis-cli --cluster create: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
