//! The one transport both browser protocols share: JSON commands (`{id, method, params}`) over
//! one WebSocket, each answered under its `id`, and events broadcast to whoever subscribed.
//! WebDriver BiDi ([`super::bidi`], Firefox) and the DevTools protocol ([`super::cdp`],
//! Chromium) have exactly this shape; they differ only in how an answer, an error or an event
//! is spelled, which each says with its [`Reader`].
//!
//! A command whose caller stopped waiting (a timeout) simply has its answer dropped. When the
//! browser closes the socket every command still waiting fails at once, not at its timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::sync::lock;

/// How long a command may go unanswered: a page's promise on a busy 2-core machine included.
const COMMAND_PATIENCE: Duration = Duration::from_secs(60);

/// Events kept for a slow subscriber before it misses some (it is told, and reads on).
const EVENT_BACKLOG: usize = 4096;

/// One message from the browser, as its protocol reads it.
pub enum Incoming {
    /// The answer to command `id`: its result, or the browser's error.
    Answer {
        id: u64,
        result: anyhow::Result<Value>,
    },
    /// An event, whole (its method, params and whatever else the protocol adds).
    Event(Value),
    /// Anything else: ignored.
    Other,
}

/// How a protocol reads one parsed message.
pub type Reader = fn(Value) -> Incoming;

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<anyhow::Result<Value>>>>>;

/// One connection; clones share it.
#[derive(Clone)]
pub struct WsRpc {
    /// The protocol's name, for errors (`WebDriver BiDi`, `CDP`).
    protocol: &'static str,
    outgoing: mpsc::UnboundedSender<String>,
    waiting: Waiting,
    next_id: Arc<AtomicU64>,
    events: broadcast::Sender<Value>,
}

impl WsRpc {
    /// Connect to `url` and start reading, on the current runtime: the returned task is the
    /// connection (abort it, or drop every handle, to end it).
    pub async fn connect(
        url: &str,
        protocol: &'static str,
        read: Reader,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let (socket, _) = async_tungstenite::tokio::connect_async(url)
            .await
            .with_context(|| format!("opening the {protocol} socket {url}"))?;
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
                        Some(Ok(Message::Text(text))) => dispatch(text.as_str(), read, &answers, &publish),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    },
                }
            }
            for (_, waiter) in lock(&answers).drain() {
                let _ = waiter.send(Err(anyhow::anyhow!(
                    "the browser closed the {protocol} socket"
                )));
            }
        });
        let rpc = Self {
            protocol,
            outgoing,
            waiting,
            next_id: Arc::new(AtomicU64::new(1)),
            events,
        };
        Ok((rpc, task))
    }

    /// Send `method` with `params` and wait for its result.
    pub async fn command(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call(json!({ "method": method, "params": params }))
            .await
    }

    /// Send `message` (a JSON object of the protocol's fields: `method`, `params`, and any the
    /// protocol adds) with a fresh `id`, and wait for its answer.
    pub async fn call(&self, mut message: Value) -> anyhow::Result<Value> {
        let protocol = self.protocol;
        let method = message["method"].as_str().unwrap_or("?").to_string();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        message["id"] = id.into();
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).insert(id, answer);
        if self.outgoing.send(message.to_string()).is_err() {
            lock(&self.waiting).remove(&id);
            bail!("{protocol} {method}: the socket is closed");
        }
        let answer = tokio::time::timeout(COMMAND_PATIENCE, answered).await;
        lock(&self.waiting).remove(&id);
        let result = answer
            .with_context(|| format!("{protocol} {method}: no answer within {COMMAND_PATIENCE:?}"))?
            .with_context(|| format!("{protocol} {method}: no answer"))?;
        result.with_context(|| format!("{protocol} {method}"))
    }

    /// Send `method` with `params` and do not wait: for what must go out where nothing can
    /// wait (a `Drop`). Its answer, when it comes, is dropped.
    pub fn command_and_forget(&self, method: &str, params: Value) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({ "id": id, "method": method, "params": params });
        let _ = self.outgoing.send(message.to_string());
    }

    /// Every event from now on.
    pub fn events(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }
}

fn dispatch(text: &str, read: Reader, waiting: &Waiting, events: &broadcast::Sender<Value>) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match read(message) {
        Incoming::Answer { id, result } => {
            if let Some(waiter) = lock(waiting).remove(&id) {
                let _ = waiter.send(result);
            }
        }
        Incoming::Event(event) => {
            let _ = events.send(event);
        }
        Incoming::Other => {}
    }
}
