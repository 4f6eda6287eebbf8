//! WebDriver BiDi's framing on the shared transport ([`super::wsrpc`]): one WebSocket to
//! `ws://…/session`, commands as `{id, method, params}` answered by
//! `{type: "success"|"error", id, …}`, and events (`{type: "event", method, params}`) handed to
//! whoever subscribed.
//!
//! It knows nothing of Firefox or of pages: [`super::firefox`] speaks the commands.

use serde_json::{Value, json};

use super::wsrpc::{Incoming, WsRpc};

/// A BiDi connection; clones share it.
pub type Bidi = WsRpc;

/// Connect to `url` (`ws://127.0.0.1:PORT/session`) and start reading.
pub async fn connect(url: &str) -> anyhow::Result<(Bidi, tokio::task::JoinHandle<()>)> {
    WsRpc::connect(url, "WebDriver BiDi", read).await
}

/// BiDi's spelling: `type` says answer (`success`, `error`) or event.
fn read(message: Value) -> Incoming {
    let id = message["id"].as_u64();
    match (message["type"].as_str(), id) {
        (Some("event"), _) => Incoming::Event(message),
        (Some("success"), Some(id)) => Incoming::Answer {
            id,
            result: Ok(message["result"].clone()),
        },
        (Some(_), Some(id)) => Incoming::Answer {
            id,
            result: Err(anyhow::anyhow!(
                "{}: {}",
                message["error"].as_str().unwrap_or("error"),
                message["message"].as_str().unwrap_or("")
            )),
        },
        _ => Incoming::Other,
    }
}

/// A BiDi `RemoteValue` (what `script.evaluate` returns) as plain JSON: primitives as they
/// are, arrays and objects recursively, anything JSON cannot hold (a node, a function, a
/// promise…) as null. Numbers BiDi sends as strings (`NaN`, `Infinity`, `-0`) become null,
/// or 0 for `-0`, as `JSON.stringify` would.
pub fn remote_value_to_json(value: &Value) -> Value {
    let inner = &value["value"];
    match value["type"].as_str() {
        Some("string") | Some("boolean") => inner.clone(),
        Some("number") => match inner {
            Value::Number(_) => inner.clone(),
            Value::String(s) if s == "-0" => json!(0),
            _ => Value::Null,
        },
        Some("bigint") => inner
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or(Value::Null, Value::from),
        Some("array") => Value::Array(
            inner
                .as_array()
                .map(|items| items.iter().map(remote_value_to_json).collect())
                .unwrap_or_default(),
        ),
        Some("object") => {
            let mut object = serde_json::Map::new();
            for pair in inner.as_array().into_iter().flatten() {
                if let (Some(key), Some(item)) = (pair[0].as_str(), pair.get(1)) {
                    object.insert(key.to_string(), remote_value_to_json(item));
                }
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_values_become_json() {
        let remote = json!({"type": "object", "value": [
            ["ms", {"type": "number", "value": 12.5}],
            ["error", {"type": "null"}],
            ["ids", {"type": "array", "value": [{"type": "number", "value": 1}, {"type": "number", "value": "NaN"}]}],
            ["ok", {"type": "boolean", "value": true}],
            ["name", {"type": "string", "value": "x"}],
            ["gone", {"type": "undefined"}],
        ]});
        assert_eq!(
            remote_value_to_json(&remote),
            json!({"ms": 12.5, "error": null, "ids": [1, null], "ok": true, "name": "x", "gone": null})
        );
    }
}
