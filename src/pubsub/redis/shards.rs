//! A cluster's pub/sub: sharded (`SSUBSCRIBE`), so a live message goes only to the shard
//! that holds its channel (classic pub/sub on a cluster is broadcast to every node). The node
//! keeps one RESP3 cluster connection for it, which holds one connection per Redis node (the
//! crate opens one to each, replicas included); each channel is subscribed on the master of
//! its slot.
//!
//! The connection re-subscribes by itself after some losses, but not after a failover
//! (measured: a killed master's channels were not subscribed on the promoted replica), and
//! it does not say when it did. So this link watches the topology itself, once a second:
//! it reads the slot map, pings every master, and a channel whose master changed (a failover,
//! a resharding), or that the server dropped (`sunsubscribe`), or that may have been lost with
//! a connection, is subscribed again on its master and then caught up from its stream, as
//! after a lost link on one node: exactly once, a `reset` first if the ring moved on.
//! Until every shard answers, the node reports itself degraded, naming the shards that do not.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{PushKind, Value};
use tokio_util::sync::CancellationToken;

use super::backend::{CONNECT_TIMEOUT, Commands};
use super::scripts::live_channel;
use super::{RedisBus, Unavailable};
use crate::sync::lock;

/// How often the topology is read and every master pinged.
const CHECK: Duration = Duration::from_secs(1);
/// How long a master may take to answer `PING` before its shard counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before trying the first connection again.
const RETRY: Duration = Duration::from_millis(500);

/// One shard as this node sees it, for `/metrics` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// Its slots, first and last (the first range its master serves).
    pub slots: (u16, u16),
    /// Its master now, `host:port`.
    pub master: String,
    /// The master answered the last `PING`.
    pub connected: bool,
    /// Times this node saw another master take the shard's slots.
    pub failovers: u64,
    /// Channels subscribed again after a failover, a resharding or a lost connection.
    pub resubscribes: u64,
    /// Channels caught up from their stream after being subscribed again.
    pub catch_ups: u64,
}

#[derive(Default)]
pub(super) struct Shards {
    /// The pub/sub connection, once made.
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Channel keys followed, and the master each was subscribed on (`None`: to be done).
    followed: HashMap<String, Option<String>>,
    /// By first slot.
    shards: BTreeMap<u16, ShardStatus>,
}

impl State {
    /// The shard serving `key`'s slot, if the topology is known.
    fn shard_of(&mut self, key: &str) -> Option<&mut ShardStatus> {
        let slot = slot_of(&live_channel(key));
        self.shards
            .range_mut(..=slot)
            .next_back()
            .map(|(_, shard)| shard)
            .filter(|shard| slot <= shard.slots.1)
    }
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Slots in a Redis Cluster.
const SLOTS: u16 = 16384;

/// The cluster slot of `key`: CRC16 of its hash tag (the part inside the first `{…}`, when
/// not empty) or of the whole key.
fn slot_of(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| {
            let close = key[open + 1..].find('}')? + open + 1;
            (close > open + 1).then(|| &bytes[open + 1..close])
        })
        .unwrap_or(bytes);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

impl Shards {
    pub(super) fn status(&self) -> Vec<ShardStatus> {
        lock(&self.state).shards.values().cloned().collect()
    }

    /// Make sure this node receives `key`'s live events from now on (the `SSUBSCRIBE` is
    /// confirmed before this returns).
    pub(super) async fn follow(&self, key: &str) -> Result<(), Unavailable> {
        if lock(&self.state)
            .followed
            .get(key)
            .is_some_and(Option::is_some)
        {
            return Ok(());
        }
        let Some(mut conn) = self.conn.lock().await.clone() else {
            return Err(Unavailable::new(
                "the cluster pub/sub connection is not up yet",
            ));
        };
        ssubscribe(&mut conn, key).await.map_err(Unavailable::new)?;
        let mut state = lock(&self.state);
        let master = state.shard_of(key).map(|shard| shard.master.clone());
        // Unknown master (no topology yet): the next check subscribes it again, harmlessly.
        state.followed.insert(key.to_string(), master);
        Ok(())
    }

    /// Stop following channels this node forgot.
    pub(super) async fn unfollow(&self, keys: &[String]) {
        let gone: Vec<String> = {
            let mut state = lock(&self.state);
            keys.iter()
                .filter(|key| state.followed.remove(*key).is_some())
                .cloned()
                .collect()
        };
        let Some(mut conn) = self.conn.lock().await.clone() else {
            return;
        };
        for key in gone {
            // A failure leaves a subscription this node ignores.
            let _ = conn.sunsubscribe(live_channel(&key)).await;
        }
    }

    /// Every followed channel is to be subscribed again (its connection may have been lost).
    fn all_stale(&self) {
        lock(&self.state)
            .followed
            .values_mut()
            .for_each(|master| *master = None);
    }

    fn count_catch_up(&self, key: &str) {
        if let Some(shard) = lock(&self.state).shard_of(key) {
            shard.catch_ups += 1;
        }
    }

    fn stale(&self, key: &str) {
        if let Some(master) = lock(&self.state).followed.get_mut(key) {
            *master = None;
        }
    }
}

async fn ssubscribe(conn: &mut ClusterConnection, key: &str) -> Result<(), String> {
    tokio::time::timeout(PING_TIMEOUT, conn.ssubscribe(live_channel(key)))
        .await
        .map_err(|_| "SSUBSCRIBE timed out".to_string())?
        .map_err(|e| format!("SSUBSCRIBE failed: {e}"))
}

/// Run a cluster's pub/sub until `stop`.
pub(super) async fn run(bus: RedisBus, stop: CancellationToken) {
    let shards = &bus.shared.shards;
    let (pushes, mut received) = tokio::sync::mpsc::unbounded_channel();
    let Some(mut conn) = connect(&bus, &pushes, &stop).await else {
        return;
    };
    let mut check = tokio::time::interval(CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut again = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = check.tick() => {
                if again {
                    let Some(fresh) = connect(&bus, &pushes, &stop).await else { return };
                    (conn, again) = (fresh, false);
                }
                match check_shards(&bus, conn.clone()).await {
                    Ok(Checked::Fine) => {}
                    Ok(Checked::Moved) => again = true,
                    Err(reason) => tracing::warn!("redis cluster: {reason}"),
                }
            }
            push = received.recv() => {
                let Some(push) = push else { return };
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() {
                            live(&bus, &String::from_utf8_lossy(channel), payload).await;
                        }
                    }
                    PushKind::SUnsubscribe => {
                        // The server dropped it (its slot moved): subscribe it again where it is.
                        if let Some(Value::BulkString(channel)) = push.data.first()
                            && let Some(key) = super::scripts::key_of_live(&String::from_utf8_lossy(channel))
                        {
                            shards.stale(key);
                        }
                    }
                    PushKind::Disconnection => {
                        bus.shared.link.failed();
                        again = true;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A live message. The connection re-subscribes by itself after some losses and says nothing
/// of it: a message whose id is past the next one this node expects follows a gap (measured:
/// an event missed on a healthy shard, the next one received). The stream has what was
/// missed, so it is read first; if it cannot be, the message waits with the rest for the
/// channel's next catch-up.
async fn live(bus: &RedisBus, channel: &str, payload: &[u8]) {
    if let Some(key) = bus.gap_before(channel, payload) {
        if let Err(e) = bus.catch_up(key).await {
            tracing::warn!(
                channel = key,
                "redis cluster: catching up after a gap: {}",
                e.reason
            );
            bus.shared.shards.stale(key);
            return;
        }
        bus.shared.shards.count_catch_up(key);
    }
    bus.on_live(channel, payload);
}

/// A pub/sub connection to the cluster (trying again until `stop`), every followed channel to
/// be subscribed on it.
async fn connect(
    bus: &RedisBus,
    pushes: &tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    stop: &CancellationToken,
) -> Option<ClusterConnection> {
    loop {
        let made = tokio::time::timeout(
            CONNECT_TIMEOUT * 4,
            bus.shared.backend.cluster_pubsub(pushes.clone()),
        )
        .await
        .unwrap_or_else(|_| Err("connecting timed out".into()));
        match made {
            Ok(conn) => {
                let shards = &bus.shared.shards;
                *shards.conn.lock().await = Some(conn.clone());
                shards.all_stale();
                return Some(conn);
            }
            Err(reason) => {
                bus.shared.link.failed();
                tracing::warn!("redis cluster pub/sub: {reason}; trying again");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// What a check found.
enum Checked {
    Fine,
    /// A shard has a new master, or a master answers but not on the pub/sub connection.
    Moved,
}

/// Read the slot map, ping every master, and subscribe again (then catch up) every channel
/// whose master is not the one it was subscribed on.
async fn check_shards(bus: &RedisBus, mut conn: ClusterConnection) -> Result<Checked, String> {
    let mut commands = bus.commands("CLUSTER SLOTS").await.map_err(|e| e.reason)?;
    let ranges = slot_ranges(&mut commands).await?;
    bus.shared.backend.learn(masters_of(&ranges));
    // Each shard's master pinged through the pub/sub connection: first by slot, as its
    // SSUBSCRIBEs go (which makes the connection follow a new master: it reads the slot map
    // again and connects), then by address, which only a live, connected master answers (a
    // request by slot to a dead one may be answered by another node).
    let mut answered = HashMap::new();
    for (first, _, master) in &ranges {
        let route = Route::new(*first, SlotAddr::Master);
        let by_slot = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
        let _ = tokio::time::timeout(
            PING_TIMEOUT,
            conn.route_command(redis::cmd("PING"), by_slot),
        )
        .await;
        let Some((host, port)) = split_addr(master) else {
            continue;
        };
        let by_address = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
        let ping = tokio::time::timeout(
            PING_TIMEOUT,
            conn.route_command(redis::cmd("PING"), by_address),
        );
        let up = matches!(ping.await, Ok(Ok(_)));
        if !up && bus.shared.backend.answers(master).await {
            tracing::warn!(
                master,
                "redis cluster: a master the pub/sub connection does not reach"
            );
            return Ok(Checked::Moved);
        }
        answered.insert(*first, up);
    }
    let shards = &bus.shared.shards;
    let todo: Vec<(String, String)> = {
        let mut state = lock(&shards.state);
        let mut next = BTreeMap::new();
        let mut moved = false;
        for (first, last, master) in ranges {
            let mut shard = state.shards.remove(&first).unwrap_or(ShardStatus {
                slots: (first, last),
                master: master.clone(),
                connected: false,
                failovers: 0,
                resubscribes: 0,
                catch_ups: 0,
            });
            if shard.master != master {
                shard.failovers += 1;
                moved = true;
                tracing::warn!(
                    slots = format!("{first}-{last}"),
                    from = shard.master,
                    to = master,
                    "redis cluster: the shard has a new master; its channels follow it"
                );
            }
            shard.slots = (first, last);
            shard.connected = answered.get(&first).copied().unwrap_or(false);
            shard.master = master;
            next.insert(first, shard);
        }
        state.shards = next;
        if moved {
            // Made again, rather than trusting the connection to follow: measured, a channel
            // subscribed again on a healthy shard after a failover elsewhere stopped
            // receiving on the old connection.
            return Ok(Checked::Moved);
        }
        let followed: Vec<(String, Option<String>)> = state
            .followed
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect();
        followed
            .into_iter()
            .filter_map(|(key, subscribed_on)| {
                let shard = state.shard_of(&key)?;
                (shard.connected && subscribed_on.as_deref() != Some(shard.master.as_str()))
                    .then(|| (key, shard.master.clone()))
            })
            .collect()
    };
    for (key, master) in todo {
        ssubscribe(&mut conn, &key).await?;
        let caught_up = bus.catch_up(&key).await;
        let mut state = lock(&shards.state);
        if let Some(shard) = state.shard_of(&key) {
            shard.resubscribes += 1;
            shard.catch_ups += u64::from(caught_up.is_ok());
        }
        caught_up.map_err(|e| format!("catching up {key}: {}", e.reason))?;
        if let Some(subscribed_on) = state.followed.get_mut(&key) {
            *subscribed_on = Some(master);
        }
    }
    Ok(Checked::Fine)
}

/// `host:port` split, for routing by address.
fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

/// The cluster's slot ranges and their masters (`CLUSTER SLOTS`), sorted by first slot.
pub(super) async fn slot_ranges(
    commands: &mut Commands,
) -> Result<Vec<(u16, u16, String)>, String> {
    let value: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(commands)
        .await
        .map_err(|e| format!("CLUSTER SLOTS: {e}"))?;
    let Value::Array(ranges) = value else {
        return Err("CLUSTER SLOTS: not an array".into());
    };
    let mut out: Vec<(u16, u16, String)> = ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(items) = range else {
                return None;
            };
            let (Value::Int(first), Value::Int(last), Value::Array(master)) =
                (items.first()?, items.get(1)?, items.get(2)?)
            else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(host) => String::from_utf8_lossy(host).into_owned(),
                Value::SimpleString(host) => host.clone(),
                _ => return None,
            };
            let Value::Int(port) = master.get(1)? else {
                return None;
            };
            Some((*first as u16, *last as u16, format!("{host}:{port}")))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The masters of `ranges`, `host:port` each once (a master may serve several ranges).
fn masters_of(ranges: &[(u16, u16, String)]) -> Vec<String> {
    let mut masters: Vec<String> = ranges.iter().map(|(_, _, m)| m.clone()).collect();
    masters.sort();
    masters.dedup();
    masters
}

/// The masters now, each once.
pub(super) async fn masters(commands: &mut Commands) -> Result<Vec<(String, u16)>, String> {
    let ranges = slot_ranges(commands).await?;
    Ok(masters_of(&ranges)
        .iter()
        .filter_map(|m| split_addr(m))
        .collect())
}

/// Run `cmd` on the node `at` (a cluster's), or wherever `commands` goes (`None`).
pub(super) async fn on_node<T: redis::FromRedisValue>(
    commands: &mut Commands,
    at: Option<&(String, u16)>,
    cmd: redis::Cmd,
) -> Result<T, String> {
    match (commands, at) {
        (Commands::Cluster(conn), Some((host, port))) => {
            let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            });
            let value = conn
                .route_command(cmd, to)
                .await
                .map_err(|e| e.to_string())?;
            redis::from_redis_value(value).map_err(|e| e.to_string())
        }
        (commands, _) => cmd.query_async(commands).await.map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_is_redis_own() {
        // `CLUSTER KEYSLOT` on redis-server 7.0.15.
        assert_eq!(slot_of("sselab:{topic:a}:id"), 15485);
        assert_eq!(slot_of("sselab:{topic:b}:live"), 3102);
        assert_eq!(slot_of("sselab:{topic:c}:live"), slot_of("topic:c"));
        assert_eq!(slot_of("{}x"), slot_of("{}x"));
    }
}
