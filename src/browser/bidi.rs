//! The WebDriver BiDi transport: one WebSocket to `ws://…/session`, commands as
//! `{id, method, params}` answered by `{type: "success"|"error", id, …}`, and events
//! (`{type: "event", method, params}`) handed to whoever subscribed.
//!
//! It knows nothing of Firefox or of pages: [`super::firefox`] speaks the commands. A command
//! whose caller stopped waiting (a timeout) simply has its answer dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::sync::lock;

/// How long a command may go unanswered (as chromiumoxide's request timeout for Chromium).
const COMMAND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Events kept for a slow subscriber before it misses some (it is told, and reads on).
const EVENT_BACKLOG: usize = 4096;

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<anyhow::Result<Value>>>>>;

/// A BiDi connection; clones share it.
#[derive(Clone)]
pub struct Bidi {
    outgoing: mpsc::UnboundedSender<String>,
    waiting: Waiting,
    next_id: Arc<AtomicU64>,
    events: broadcast::Sender<Value>,
}

impl Bidi {
    /// Connect to `url` (`ws://127.0.0.1:PORT/session`) and start reading.
    pub async fn connect(url: &str) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let (socket, _) = async_tungstenite::tokio::connect_async(url)
            .await
            .with_context(|| format!("opening the WebDriver BiDi socket {url}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let waiting: Waiting = Arc::default();
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (answers, publish) = (waiting.clone(), events.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    next = to_send.recv() => match next {
                        Some(text) => {
                            if sink.send(Message::text(text)).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => dispatch(text.as_str(), &answers, &publish),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                }
            }
            // The browser is gone: every command still waiting fails now, not at its timeout.
            for (_, waiter) in lock(&answers).drain() {
                let _ = waiter.send(Err(anyhow::anyhow!("the browser closed the BiDi socket")));
            }
        });
        let bidi = Self {
            outgoing,
            waiting,
            next_id: Arc::new(AtomicU64::new(1)),
            events,
        };
        Ok((bidi, task))
    }

    /// Send `method` with `params` and wait for its result.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).insert(id, answer);
        let message = json!({ "id": id, "method": method, "params": params });
        if self.outgoing.send(message.to_string()).is_err() {
            lock(&self.waiting).remove(&id);
            bail!("{method}: the BiDi socket is closed");
        }
        let answer = tokio::time::timeout(COMMAND_PATIENCE, answered).await;
        lock(&self.waiting).remove(&id);
        let result = answer
            .with_context(|| format!("BiDi {method}: no answer within {COMMAND_PATIENCE:?}"))?
            .with_context(|| format!("{method}: no answer"))?;
        result.with_context(|| format!("BiDi {method}"))
    }

    /// Every event from now on.
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }
}

fn dispatch(text: &str, waiting: &Waiting, events: &broadcast::Sender<Value>) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match message["type"].as_str() {
        Some("event") => {
            let _ = events.send(message);
        }
        Some(kind) => {
            let Some(id) = message["id"].as_u64() else {
                return;
            };
            let Some(waiter) = lock(waiting).remove(&id) else {
                return;
            };
            let result = if kind == "success" {
                Ok(message["result"].clone())
            } else {
                Err(anyhow::anyhow!(
                    "{}: {}",
                    message["error"].as_str().unwrap_or("error"),
                    message["message"].as_str().unwrap_or("")
                ))
            };
            let _ = waiter.send(result);
        }
        None => {}
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
