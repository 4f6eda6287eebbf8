//! What makes sessions cluster-wide beyond their events: the same-id policy (`replace`: a
//! control message ends the older stream on other nodes; `reject`: one node's claim, held in
//! Redis while it has the subscriber), deletion (a tombstone in Redis, `bye` everywhere), and
//! finding every session for a broadcast.

use std::time::Duration;

use super::scripts::{self, keys};
use super::{RedisBus, SCAN_COUNT, Unavailable, shards};
use crate::sse::CloseReason;

/// What a session's deletion (kept in Redis for the tombstone's time) means to a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfDeleted {
    /// Not a session: there is no deletion.
    Ignore,
    /// A new start (no `Last-Event-ID`): the id may be used again.
    Forget,
    /// A reconnect: refused, so the browser gets 204 and stops.
    Refuse,
}

impl IfDeleted {
    pub(super) fn arg(self) -> &'static str {
        match self {
            Self::Ignore => "",
            Self::Forget => "forget",
            Self::Refuse => "refuse",
        }
    }
}

impl RedisBus {
    /// Tell every other node to end its subscribers of `key` with `replaced`.
    pub(super) async fn replace_elsewhere(&self, key: &str) -> Result<(), Unavailable> {
        redis::cmd(self.publish_command())
            .arg(scripts::live_channel(key))
            .arg(scripts::replaced(&self.shared.node))
            .query_async::<i64>(&mut self.commands("replace").await?)
            .await
            .map(drop)
            .map_err(|e| self.failed("replace", e))
    }

    /// `key` was subscribed on `node`: unless that is this node, its subscribers here end
    /// with `replaced`.
    pub(super) fn replaced_elsewhere(&self, key: &str, node: &str) {
        if node != self.shared.node {
            self.shared.fanout.replace_all(key);
        }
    }

    /// Delete `key` everywhere: forget it in Redis, keep a tombstone for `tombstone` (a
    /// reconnect to it is refused on any node), and end its subscribers on the other nodes
    /// with `bye`. Gives whether Redis had it.
    pub async fn delete(&self, key: &str, tombstone: Duration) -> Result<bool, Unavailable> {
        let shared = &self.shared;
        shared
            .scripts
            .delete
            .key(&keys(key))
            .arg(scripts::live_channel(key))
            .arg(scripts::deleted(&shared.node))
            .arg(tombstone.as_millis().max(1) as u64)
            .arg(self.publish_command())
            .invoke_async(&mut self.commands("delete").await?)
            .await
            .map_err(|e| self.failed("delete", e))
    }

    /// `key` was deleted on `node`: unless that is this node (which did it already), its
    /// subscribers here get `bye`, and this node stops following it.
    pub(super) fn deleted_elsewhere(&self, key: &str, node: &str) {
        if node == self.shared.node {
            return;
        }
        self.shared.fanout.remove(key, CloseReason::Bye);
        let (bus, keys) = (self.clone(), vec![key.to_string()]);
        tokio::spawn(async move { bus.forget(&keys).await });
    }

    /// `--same-id reject` across nodes: when a session's last subscriber here leaves, this
    /// node lets go of its claim at once, so a reconnect to another node is not refused.
    pub fn release_sessions_when_idle(&self) {
        let bus = self.clone();
        self.shared.fanout.on_idle(move |key| {
            let (bus, key) = (bus.clone(), key.to_string());
            tokio::spawn(async move {
                let shared = &bus.shared;
                let released: Result<i64, String> = match shared.backend.commands().await {
                    Ok(mut commands) => shared
                        .scripts
                        .release
                        .key(&keys(&key))
                        .arg(&shared.node)
                        .invoke_async(&mut commands)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Err(e) = released {
                    // The claim expires with the linger instead.
                    tracing::warn!(channel = key, "redis: could not release the session: {e}");
                }
            });
        });
    }

    /// Every channel in Redis whose key starts with `prefix` (a `SCAN`: for rare, whole-
    /// cluster operations such as a broadcast), sorted.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, Unavailable> {
        let pattern = scripts::pattern(prefix);
        let mut commands = self.commands("SCAN").await?;
        // A cluster's keys are on its masters, each scanned in turn.
        let nodes = match self.is_cluster() {
            false => vec![None],
            true => shards::masters(&mut commands)
                .await
                .map_err(|e| self.failed("SCAN", e))?
                .into_iter()
                .map(Some)
                .collect(),
        };
        let mut keys = Vec::new();
        for node in &nodes {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let (next, found): (u64, Vec<String>) =
                    shards::on_node(&mut commands, node.as_ref(), scan)
                        .await
                        .map_err(|e| self.failed("SCAN", e))?;
                keys.extend(
                    found
                        .iter()
                        .filter_map(|k| scripts::key_of_epoch(k))
                        .map(str::to_string),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        // SCAN may give a key twice.
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
