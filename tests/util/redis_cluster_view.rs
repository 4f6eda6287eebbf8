//! What one node of a Redis Cluster says the cluster is: its `CLUSTER NODES` answer, read.
//! Its text format is the same in every Redis since 3.0 (`CLUSTER SHARDS` came in 7.0).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// One line of `CLUSTER NODES`: `id ip:port@bus flags master ping pong epoch link slots…`.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub id: String,
    pub addr: SocketAddr,
    flags: Vec<String>,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    pub slots: Vec<RangeInclusive<u16>>,
}

impl NodeEntry {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }

    /// Marked failing by this node (`fail?`) or by the cluster (`fail`).
    pub fn failing(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }

    /// Met (not in handshake), with an address, and not failing.
    pub fn flags_settled(&self) -> bool {
        !self.failing() && !self.has_flag("handshake") && !self.has_flag("noaddr")
    }
}

/// The lines of `CLUSTER NODES` with an address (a node still in handshake may have none);
/// slots being moved (`[slot->-id]`) are left out.
pub fn parse_nodes(text: &str) -> Vec<NodeEntry> {
    text.lines().filter_map(parse_node).collect()
}

fn parse_node(line: &str) -> Option<NodeEntry> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?.to_string();
    let addr = fields.next()?.split(['@', ',']).next()?.parse().ok()?;
    let flags = fields.next()?.split(',').map(str::to_string).collect();
    let master_id = Some(fields.next()?)
        .filter(|m| *m != "-")
        .map(str::to_string);
    let slots = fields
        .skip(4) // ping-sent, pong-recv, config-epoch, link-state
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((start, end)) => Some(start.parse().ok()?..=end.parse().ok()?),
            None => s.parse().ok().map(|slot| slot..=slot),
        })
        .collect();
    Some(NodeEntry {
        id,
        addr,
        flags,
        master_id,
        slots,
    })
}

/// The master that serves `slot` in `view`.
pub fn serving(view: &[NodeEntry], slot: u16) -> Option<&NodeEntry> {
    view.iter()
        .find(|n| n.is_master() && n.slots.iter().any(|r| r.contains(&slot)))
}

/// Master → its replicas (sorted), for the masters serving slots and not failing.
pub fn shards(view: &[NodeEntry]) -> BTreeMap<SocketAddr, Vec<SocketAddr>> {
    view.iter()
        .filter(|m| m.is_master() && !m.slots.is_empty() && !m.failing())
        .map(|m| {
            let mut replicas: Vec<SocketAddr> = view
                .iter()
                .filter(|r| r.master_id.as_ref() == Some(&m.id))
                .map(|r| r.addr)
                .collect();
            replicas.sort();
            (m.addr, replicas)
        })
        .collect()
}

#[test]
fn cluster_nodes_lines_are_read() {
    let text = "\
07c3 127.0.0.1:30004@40004,host slave e7d1 0 1426238317239 4 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 5462 [5461->-292f]
6ec2 :0@0 master,fail?,noaddr - 1426238316232 1426238314229 3 disconnected
";
    let view = parse_nodes(text);
    assert_eq!(view.len(), 2, "the node with no address is left out");
    assert_eq!(view[0].master_id.as_deref(), Some("e7d1"));
    assert_eq!(view[0].addr.port(), 30004);
    assert_eq!(view[1].slots, vec![0..=5460, 5462..=5462]);
    assert_eq!(serving(&view, 5462).map(|n| n.addr.port()), Some(30001));
    assert!(serving(&view, 5461).is_none());
}
