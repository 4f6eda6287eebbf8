//! What sselab keeps in Redis per channel, and the two Lua scripts that touch it: one atomic
//! step per publish, one atomic read per replay.
//!
//! Per channel key `K` (`topic:news`, `session:abc`), all in one hash slot (`{K}`):
//! `sselab:{K}:id` the last id given (`INCR`), `sselab:{K}:epoch` set when the numbering
//! starts, as `<start>:<random token>`: the counter starts at `<start>`, Redis's clock in
//! microseconds then, so a numbering started after Redis lost (or expired) the channel is
//! above every id the old one gave, and an old id is always before the new ring (`reset`),
//! whichever node a client brings it to; `sselab:{K}:events` the replay ring, a Redis stream whose
//! entry ids are the event ids (`<id>-0`), capped at the replay size, and
//! `sselab:{K}:deleted` while a deleted session's reconnects are to get 204, and
//! `sselab:{K}:holder`, the node that holds a session's one subscriber under
//! `--same-id reject` (expiring with the linger unless that node refreshes it), and
//! `sselab:{K}:finished` once an order has ended (for its linger). Live events go
//! out on the pub/sub channel `sselab:{K}:live` as `epoch \n id \n name \n data`; control
//! messages (a session replaced or deleted on some node) start with `!`.
//!
//! Everything a publish does happens in one script, so no node ever sees an id without its
//! event in the ring, or an event in the ring that was not also sent live.

use redis::{Script, Value};

/// Prefix of every key and pub/sub channel sselab uses, so a shared Redis stays tidy.
const PREFIX: &str = "sselab:";

/// The keys of channel `key`, in the order every script takes them.
pub(super) fn keys(key: &str) -> [String; 8] {
    [
        "id", "epoch", "events", "deleted", "holder", "finished", "master", "jumps",
    ]
    .map(|part| format!("{PREFIX}{{{key}}}:{part}"))
}

/// A `SCAN MATCH` pattern for every channel whose key starts with `prefix`, and the key back
/// from a match.
pub(super) fn pattern(prefix: &str) -> String {
    format!("{PREFIX}{{{prefix}*}}:epoch")
}

pub(super) fn key_of_epoch(epoch_key: &str) -> Option<&str> {
    epoch_key
        .strip_prefix(PREFIX)?
        .strip_prefix('{')?
        .strip_suffix("}:epoch")
}

/// The pub/sub channel live events of `key` go out on.
pub(super) fn live_channel(key: &str) -> String {
    format!("{PREFIX}{{{key}}}:live")
}

/// The channel key back from a pub/sub channel name.
pub(super) fn key_of_live(channel: &str) -> Option<&str> {
    channel
        .strip_prefix(PREFIX)?
        .strip_prefix('{')?
        .strip_suffix("}:live")
}

/// Defines `start_numbering(fresh)` for the scripts that may start a channel's numbering (KEYS
/// as in [`keys`]): the counter starts at Redis's clock in microseconds, so the new numbering
/// is above every id an older one of this channel gave (each of its publishes took Redis more
/// than a microsecond, and it started earlier); the epoch is `<that start>:<fresh token>`.
/// Ids go out through `string.format('%d')`: Lua's own formatting of numbers past 1e14 is
/// inexact (`1.796e+15`).
/// `master()` is this master's replication id (a promoted replica gets a new one).
const START_NUMBERING: &str = r#"
local function master()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
end
local function start_numbering(fresh)
  local now = redis.call('TIME')
  local start = now[1] .. string.format('%06d', tonumber(now[2]))
  local epoch = start .. ':' .. fresh
  redis.call('SET', KEYS[2], epoch)
  redis.call('SET', KEYS[1], start)
  redis.call('SET', KEYS[7], master())
  redis.call('DEL', KEYS[3], KEYS[6], KEYS[8])
  return epoch
end
local kept = {1, 2, 3, 7, 8}
"#;

/// KEYS: as in [`keys`]. ARGV: live channel, name, data, ring size, linger (ms), a fresh
/// epoch token, must-exist (`1`: a session that nobody subscribed to has no epoch: refuse),
/// `PUBLISH` or `SPUBLISH`.
/// Returns `{id, nodes that got it live, epoch}`, or `false` when must-exist and missing.
///
/// A failover may promote a replica that missed the last events: its counter is behind ids
/// already delivered, and counting on from there would give them again to other events (a
/// resume would skip those silently). So the first publish on another master than the one
/// that numbered last (its replication id differs) jumps the counter past every id the old
/// one can have given: to Redis's clock in microseconds (ids stay below it, as in
/// [`START_NUMBERING`]) and at least [`JUMP`] past the counter, and notes the jump in
/// `jumps` so a replay across it is no gap.
const PUBLISH: &str = r#"
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  if ARGV[7] == '1' then return false end
  epoch = start_numbering(ARGV[6])
end
local here = master()
local numbered_by = redis.call('GET', KEYS[7])
if numbered_by ~= here then
  if numbered_by then
    local last = tonumber(redis.call('GET', KEYS[1]) or '0')
    local now = redis.call('TIME')
    local clock = tonumber(now[1] .. string.format('%06d', tonumber(now[2])))
    local jump = math.max(clock, last + JUMP)
    redis.call('SET', KEYS[1], string.format('%d', jump))
    redis.call('HSET', KEYS[8], string.format('%d', jump + 1), string.format('%d', last))
  end
  redis.call('SET', KEYS[7], here)
end
local id = string.format('%d', redis.call('INCR', KEYS[1]))
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id .. '-0', 'n', ARGV[2], 'd', ARGV[3])
local nodes = redis.call(ARGV[8], ARGV[1], epoch .. '\n' .. id .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
for _, i in ipairs(kept) do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return {id, nodes, epoch}
"#;

/// How far past its counter a promoted master's numbering jumps at least (see [`PUBLISH`]):
/// more events than a master can give in the time its replicas lag behind.
const JUMP: u64 = 1_000_000;

/// KEYS: id, epoch, events, deleted, holder. ARGV: the first id wanted, linger (ms), a fresh
/// epoch token, create (`1`: start the numbering when missing, as a session's first subscribe
/// does), what a deletion means here (`refuse`: a reconnect to a deleted session; `forget`:
/// a new start clears it; anything else: not a session), and the node claiming the session
/// (`--same-id reject`; empty: no claim).
/// Returns `{epoch, last id, first id held, finished, start, before first, id, name, data, id,
/// name, data...}`: the events from the given id on, with what it takes to see whether the
/// ring lost some (`start`: the id the numbering started after; `0` for an epoch without one,
/// as sselab wrote before; `before first`: the id given before the first held, which is not
/// `first - 1` where the numbering jumped); `{}` when
/// refused because the session was deleted; `{'busy'}` when another node holds it.
const REPLAY: &str = r#"
if ARGV[5] == 'refuse' and redis.call('EXISTS', KEYS[4]) == 1 then return {} end
if ARGV[6] ~= '' then
  local holder = redis.call('GET', KEYS[5])
  if holder and holder ~= ARGV[6] then return {'busy'} end
  redis.call('SET', KEYS[5], ARGV[6], 'PX', ARGV[2])
end
if ARGV[5] == 'forget' then redis.call('DEL', KEYS[4]) end
local epoch = redis.call('GET', KEYS[2])
if not epoch and ARGV[4] == '1' then
  epoch = start_numbering(ARGV[3])
end
if epoch then
  for _, i in ipairs(kept) do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
local last = redis.call('GET', KEYS[1]) or '0'
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
local finished = redis.call('EXISTS', KEYS[6])
local start = epoch and string.match(epoch, '^(%d+):') or '0'
local out = {epoch or '', last, '0', tostring(finished), start, '0'}
if first[1] then
  out[3] = string.match(first[1][1], '^(%d+)')
  out[6] = redis.call('HGET', KEYS[8], out[3]) or string.format('%d', tonumber(out[3]) - 1)
end
local after = redis.call('XRANGE', KEYS[3], ARGV[1], '+')
for _, entry in ipairs(after) do
  out[#out + 1] = string.match(entry[1], '^(%d+)')
  out[#out + 1] = entry[2][2]
  out[#out + 1] = entry[2][4]
end
return out
"#;

/// KEYS: as in [`keys`]: forget the channel, mark it deleted for `ARGV[3]` ms, and send
/// `ARGV[2]` on its live channel `ARGV[1]` (with `ARGV[4]`: `PUBLISH` or `SPUBLISH`). Returns
/// whether it existed.
const DELETE: &str = r#"
local existed = redis.call('EXISTS', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[7], KEYS[8])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
redis.call(ARGV[4], ARGV[1], ARGV[2])
return existed
"#;

/// KEYS: as in [`keys`]. ARGV: live channel, message, linger (ms), `PUBLISH` or `SPUBLISH`.
/// An order ended: mark it finished for its linger and tell every node (after its last
/// event, on the same channel). Returns whether the channel exists.
const FINISH: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[6], '1', 'PX', ARGV[3])
redis.call(ARGV[4], ARGV[1], ARGV[2])
return 1
"#;

/// KEYS: id, epoch, events, deleted, holder. ARGV: linger (ms), this node. Keeps a channel
/// with subscribers here from expiring while nothing is published, and this node's claim on
/// it. Returns whether it still exists.
const TOUCH: &str = r#"
if redis.call('GET', KEYS[5]) == ARGV[2] then redis.call('PEXPIRE', KEYS[5], ARGV[1]) end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for _, i in ipairs({1, 2, 3, 7, 8}) do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 1
"#;

/// KEYS: id, epoch, events, deleted, holder. ARGV: this node. Lets go of this node's claim
/// on a session (its last subscriber here left).
const RELEASE: &str = r#"
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 0
"#;

/// The scripts, hashed once (`EVALSHA`, loaded again by the client when Redis forgot them).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) publish: Script,
    pub(super) replay: Script,
    pub(super) touch: Script,
    pub(super) delete: Script,
    pub(super) release: Script,
    pub(super) finish: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            publish: Script::new(&format!(
                "{START_NUMBERING}{}",
                PUBLISH.replace("JUMP", &JUMP.to_string())
            )),
            replay: Script::new(&format!("{START_NUMBERING}{REPLAY}")),
            touch: Script::new(TOUCH),
            delete: Script::new(DELETE),
            release: Script::new(RELEASE),
            finish: Script::new(FINISH),
        }
    }

    pub(super) fn all(&self) -> [&Script; 6] {
        [
            &self.publish,
            &self.replay,
            &self.touch,
            &self.delete,
            &self.release,
            &self.finish,
        ]
    }
}

/// One event as Redis keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredEvent {
    pub(super) id: u64,
    /// Empty when the event has no name.
    pub(super) name: String,
    pub(super) data: String,
}

/// What the replay script read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    /// Empty when the channel does not exist in Redis.
    pub(super) epoch: String,
    pub(super) last_id: u64,
    /// The id this numbering started after (its first event is the next): a subscriber
    /// starting from the beginning starts here.
    pub(super) start: u64,
    /// `None` when the ring is empty.
    pub(super) first_held: Option<u64>,
    /// The id given just before the first held (`first_held - 1`, unless the numbering jumped
    /// there after a failover); 0 when the ring is empty.
    pub(super) before_first: u64,
    /// The channel has ended (an order that is done): nothing live follows.
    pub(super) finished: bool,
    pub(super) events: Vec<StoredEvent>,
}

impl Stored {
    /// Whether a subscriber that has every event up to `after` lacks some the ring no longer
    /// holds.
    pub(super) fn lost_after(&self, after: u64) -> bool {
        match self.first_held {
            Some(_) => self.before_first > after,
            None => self.last_id > after,
        }
    }
}

/// What arrives on a channel's pub/sub channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LiveMessage {
    /// An event, numbered in `epoch`.
    Event { epoch: String, event: StoredEvent },
    /// A session was subscribed on node `node`: its older subscribers elsewhere are
    /// replaced (`--same-id replace`, cluster-wide).
    Replaced { node: String },
    /// A session was deleted on node `node`: its subscribers everywhere get `bye`.
    Deleted { node: String },
    /// An order ended: its subscribers everywhere end after its last event.
    Finished,
}

/// Control messages start with `!`; an epoch (hex) never does.
const REPLACED: &str = "!replaced\n";
const DELETED: &str = "!deleted\n";
/// The message that ends an order's subscribers on every node.
pub(super) const FINISHED: &str = "!finished\n";

/// The message that ends a deleted session's subscribers on every node but `node`.
pub(super) fn deleted(node: &str) -> String {
    format!("{DELETED}{node}")
}

/// The message that ends a session's subscribers on every node but `node`.
pub(super) fn replaced(node: &str) -> String {
    format!("{REPLACED}{node}")
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: &Value) -> Option<u64> {
    text(value)?.parse().ok()
}

/// What the replay script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Replayed {
    Stored(Stored),
    /// A reconnect to a deleted session.
    Deleted,
    /// Another node holds the session (`--same-id reject`).
    Busy,
}

/// The replay script's answer; `None` if it is not what the script returns.
pub(super) fn parse_stored(value: &Value) -> Option<Replayed> {
    let Value::Array(items) = value else {
        return None;
    };
    match items.as_slice() {
        [] => return Some(Replayed::Deleted),
        [one] if text(one).as_deref() == Some("busy") => return Some(Replayed::Busy),
        _ => {}
    }
    let (head, rest) = items.split_at_checked(6)?;
    if rest.len() % 3 != 0 {
        return None;
    }
    let events = rest
        .chunks(3)
        .map(|e| {
            Some(StoredEvent {
                id: number(&e[0])?,
                name: text(&e[1])?,
                data: text(&e[2])?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let first = number(&head[2])?;
    Some(Replayed::Stored(Stored {
        epoch: text(&head[0])?,
        last_id: number(&head[1])?,
        start: number(&head[4])?,
        first_held: (first > 0).then_some(first),
        before_first: number(&head[5])?,
        finished: text(&head[3])? == "1",
        events,
    }))
}

/// `XREVRANGE … COUNT 1`'s answer: the last event's data, if the ring holds any.
pub(super) fn parse_last_data(value: &Value) -> Option<String> {
    let Value::Array(entries) = value else {
        return None;
    };
    let Value::Array(entry) = entries.first()? else {
        return None;
    };
    let Value::Array(fields) = entry.get(1)? else {
        return None;
    };
    let at = fields
        .iter()
        .position(|f| text(f).as_deref() == Some("d"))?;
    text(fields.get(at + 1)?)
}

/// A pub/sub message: `epoch \n id \n name \n data` (the data may hold newlines), or a
/// control message.
pub(super) fn parse_live(payload: &[u8]) -> Option<LiveMessage> {
    let payload = std::str::from_utf8(payload).ok()?;
    if let Some(node) = payload.strip_prefix(REPLACED) {
        return Some(LiveMessage::Replaced {
            node: node.to_string(),
        });
    }
    if payload.starts_with(FINISHED) {
        return Some(LiveMessage::Finished);
    }
    if let Some(node) = payload.strip_prefix(DELETED) {
        return Some(LiveMessage::Deleted {
            node: node.to_string(),
        });
    }
    let mut parts = payload.splitn(4, '\n');
    let epoch = parts.next()?.to_string();
    let id = parts.next()?.parse().ok()?;
    let name = parts.next()?.to_string();
    let data = parts.next()?.to_string();
    Some(LiveMessage::Event {
        epoch,
        event: StoredEvent { id, name, data },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_messages_keep_newlines_in_the_data() {
        let live = parse_live(b"e1\n7\nprice\nline one\nline two").expect("parses");
        let LiveMessage::Event { epoch, event } = live else {
            panic!("an event: {live:?}");
        };
        assert_eq!(epoch, "e1");
        assert_eq!(event.id, 7);
        assert_eq!(event.name, "price");
        assert_eq!(event.data, "line one\nline two");
        assert_eq!(parse_live(b"e1\nseven\n\nx"), None);
        assert_eq!(
            parse_live(replaced("node-a").as_bytes()),
            Some(LiveMessage::Replaced {
                node: "node-a".into()
            })
        );
    }

    #[test]
    fn keys_share_one_hash_slot_and_the_live_channel_names_its_key() {
        let [id, epoch, events, deleted, holder, _finished, master, jumps] = keys("topic:news");
        assert_eq!(master, "sselab:{topic:news}:master");
        assert_eq!(jumps, "sselab:{topic:news}:jumps");
        assert_eq!(deleted, "sselab:{topic:news}:deleted");
        assert_eq!(holder, "sselab:{topic:news}:holder");
        assert_eq!(id, "sselab:{topic:news}:id");
        assert_eq!(epoch, "sselab:{topic:news}:epoch");
        assert_eq!(events, "sselab:{topic:news}:events");
        assert_eq!(key_of_epoch(&epoch), Some("topic:news"));
        assert_eq!(pattern("topic:"), "sselab:{topic:*}:epoch");
        let live = live_channel("topic:news");
        assert_eq!(key_of_live(&live), Some("topic:news"));
        assert_eq!(key_of_live("other"), None);
    }
}
