//! What makes orders cluster-wide beyond their events: the end of an order reaches every
//! node after its last event (a control message on its channel, and a mark in Redis for
//! later subscribes), its last detail is read from Redis, and ids made on a node carry its tag.

use std::time::Duration;

use super::scripts::{self, keys};
use super::{NODE_TAG, RedisBus, Unavailable};
use crate::sse::CloseReason;

impl RedisBus {
    /// The channel ended (an order that is done): every node ends its subscribers after the
    /// last event, and a later subscribe gets only what it lacks. Gives whether it existed.
    pub async fn finish(&self, key: &str) -> Result<bool, Unavailable> {
        let shared = &self.shared;
        shared
            .scripts
            .finish
            .key(&keys(key))
            .arg(scripts::live_channel(key))
            .arg(scripts::FINISHED)
            .arg(shared.linger_ms)
            .arg(self.publish_command())
            .invoke_async(&mut self.commands("finish").await?)
            .await
            .map_err(|e| self.failed("finish", e))
    }

    /// The channel ended (the control message came after its last event): its subscribers
    /// here end once they have it, and after the linger this node forgets it.
    pub(super) fn finished(&self, key: &str) {
        let fanout = &self.shared.fanout;
        fanout.close(key, CloseReason::End, true);
        let (bus, key) = (self.clone(), key.to_string());
        let linger = Duration::from_millis(self.shared.linger_ms);
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            bus.shared.fanout.remove(&key, CloseReason::End);
            bus.forget(std::slice::from_ref(&key)).await;
        });
    }

    /// The data of the channel's last event in Redis, if its ring holds any.
    pub async fn last_data(&self, key: &str) -> Result<Option<String>, Unavailable> {
        let [_, _, events, ..] = keys(key);
        let value: redis::Value = redis::cmd("XREVRANGE")
            .arg(events)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.commands("XREVRANGE").await?)
            .await
            .map_err(|e| self.failed("XREVRANGE", e))?;
        Ok(scripts::parse_last_data(&value))
    }

    /// A short name for this node, unique among the nodes (for ids made here).
    pub fn node_tag(&self) -> &str {
        &self.shared.node[..NODE_TAG]
    }
}
