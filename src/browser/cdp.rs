//! The DevTools protocol's framing on the shared transport ([`super::wsrpc`]): commands
//! `{id, method, params, sessionId?}` answered by `{id, result}` or
//! `{id, error: {code, message}}`, events `{method, params, sessionId?}`.
//!
//! A tab is a session (`Target.attachToTarget` with `flatten: true`): its commands and events
//! carry the session's id, so every tab shares the browser's one socket. It knows nothing of
//! Chromium's switches or of pages: [`super::chromium`] speaks the commands.

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::wsrpc::{Incoming, WsRpc};

/// A CDP connection to the browser (browser-level commands: `Target.*`, `Browser.*`); clones
/// share it.
pub type Cdp = WsRpc;

/// Connect to `url` (`ws://127.0.0.1:PORT/devtools/browser/…`) and start reading.
pub async fn connect(url: &str) -> anyhow::Result<(Cdp, tokio::task::JoinHandle<()>)> {
    WsRpc::connect(url, "CDP", read).await
}

/// One attached target (a tab): commands go to it, events come from it.
#[derive(Clone)]
pub struct Session {
    cdp: Cdp,
    id: String,
}

impl Session {
    /// The session `id` (from `Target.attachToTarget`) on `cdp`.
    pub fn new(cdp: &Cdp, id: String) -> Self {
        Self {
            cdp: cdp.clone(),
            id,
        }
    }

    /// Send `method` to this target and wait for its result.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let message = json!({ "method": method, "params": params, "sessionId": self.id });
        self.cdp.call(message).await
    }

    /// This target's events from now on.
    pub fn events(&self) -> SessionEvents {
        SessionEvents {
            all: self.cdp.events(),
            session: self.id.clone(),
        }
    }
}

/// One session's events, read one method at a time.
pub struct SessionEvents {
    all: broadcast::Receiver<Value>,
    session: String,
}

impl SessionEvents {
    /// The params of this session's next `method` event; `None` once the connection is gone.
    pub async fn next(&mut self, method: &str) -> Option<Value> {
        loop {
            let mut event = match self.all.recv().await {
                Ok(event) => event,
                // Missed some (a slow reader): read on.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if event["method"] == method && event["sessionId"] == self.session.as_str() {
                return Some(event["params"].take());
            }
        }
    }
}

/// CDP's spelling: an `id` makes an answer (`result`, or `error`), a `method` an event.
fn read(message: Value) -> Incoming {
    if let Some(id) = message["id"].as_u64() {
        let result = match message.get("error") {
            None => Ok(message["result"].clone()),
            Some(error) => Err(anyhow::anyhow!(
                "{} ({})",
                error["message"].as_str().unwrap_or("error"),
                error["code"]
            )),
        };
        return Incoming::Answer { id, result };
    }
    if message["method"].is_string() {
        return Incoming::Event(message);
    }
    Incoming::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_errors_and_events_are_told_apart() {
        let answer = read(json!({"id": 7, "result": {"targetId": "T"}}));
        assert!(
            matches!(answer, Incoming::Answer { id: 7, result: Ok(ref r) } if r["targetId"] == "T")
        );
        let error = read(json!({"id": 8, "error": {"code": -32000, "message": "No target"}}));
        let Incoming::Answer {
            id: 8,
            result: Err(e),
        } = error
        else {
            panic!("an error answer")
        };
        assert_eq!(e.to_string(), "No target (-32000)");
        let event = read(json!({"method": "Page.loadEventFired", "sessionId": "S", "params": {}}));
        assert!(matches!(event, Incoming::Event(ref e) if e["sessionId"] == "S"));
        assert!(matches!(read(json!({"unexpected": true})), Incoming::Other));
    }
}
