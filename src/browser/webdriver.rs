//! A small W3C WebDriver *classic* client: JSON over HTTP/1.1 to a driver on loopback (here
//! WebKitWebDriver), on the crate's own client, a fresh connection per command.
//!
//! Every request is bounded in time: a driver whose browser died answers some commands never
//! (WebKitWebDriver's `POST /session` hangs when MiniBrowser exits at start). Classic WebDriver
//! has one current window per session and runs one command at a time, so a [`Session`] holds a
//! lock over the window it last switched to, and a command on a tab switches there first under
//! that lock. What it deliberately does not do: BiDi, events, elements, actions — the lab
//! needs windows, scripts and screenshots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::client::{Conn, connect_tcp};

/// How long a driver may take to answer an ordinary command on a busy machine. It is also the
/// longest one tab can hold up the others (the session runs one command at a time): scripts
/// answer in milliseconds, since no command waits for a page or a promise (see `webkit.rs`).
pub(super) const COMMAND_PATIENCE: Duration = Duration::from_secs(15);

/// How long `POST /session` may take: it starts the browser, and hangs for good when the
/// browser exits at start (WebKitWebDriver, measured), so it needs a bound of its own.
pub(super) const SESSION_PATIENCE: Duration = Duration::from_secs(60);

/// One request to the driver at `addr`, answered within `patience`: the response's `value`,
/// or the WebDriver error it names.
pub(super) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    patience: Duration,
) -> anyhow::Result<Value> {
    let uri: Uri = format!("http://{addr}{path}")
        .parse()
        .with_context(|| format!("a WebDriver path: {path}"))?;
    let exchange = async {
        let tcp = connect_tcp(addr).await?;
        let conn = Conn::handshake_h1(tcp).await?;
        let payload = body.map_or(Bytes::new(), |b| Bytes::from(b.to_string()));
        let mut builder = conn.request(method, &uri);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        let response = conn.send(request).await?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>(bytes)
    };
    let bytes = tokio::time::timeout(patience, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("WebDriver {method} {path}: no answer within {patience:?}"))?
        .map_err(|e| anyhow::anyhow!("WebDriver {method} {path}: {e}"))?;
    let answer: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("WebDriver {method} {path}: the answer is not JSON"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        let message = value["message"].as_str().unwrap_or_default();
        bail!("WebDriver {method} {path}: {error}: {message}");
    }
    Ok(value)
}

/// One WebDriver session; clones share it (and its lock).
#[derive(Clone)]
pub(super) struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    id: String,
    /// The window the session is on (classic has one current window): held for a whole
    /// switch-and-command, so commands on different tabs never interleave.
    current: tokio::sync::Mutex<Option<String>>,
}

impl Session {
    /// `POST /session` with `capabilities` (bounded by [`SESSION_PATIENCE`]).
    pub async fn new(addr: SocketAddr, capabilities: Value) -> anyhow::Result<Self> {
        let body = json!({ "capabilities": capabilities });
        let created = request(addr, "POST", "/session", Some(&body), SESSION_PATIENCE)
            .await
            .context(
                "the browser did not start (a driver whose browser exits at start never answers \
                 `POST /session`: is there a display, and does the browser take the switches?)",
            )?;
        let id = created["sessionId"]
            .as_str()
            .context("POST /session gave no sessionId")?
            .to_string();
        Ok(Self {
            shared: Arc::new(Shared {
                addr,
                id,
                current: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A command of this session (`suffix` after `/session/{id}`), on no window in particular.
    pub async fn command(
        &self,
        method: &str,
        suffix: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let path = format!("/session/{}{suffix}", self.shared.id);
        request(self.shared.addr, method, &path, body, COMMAND_PATIENCE).await
    }

    /// A command on the window `handle`: switched to first, under the session's lock.
    pub async fn on_window(
        &self,
        handle: &str,
        method: &str,
        suffix: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut current = self.shared.current.lock().await;
        if current.as_deref() != Some(handle) {
            // Forgotten first: a switch that failed half-way leaves the window unknown.
            *current = None;
            self.command("POST", "/window", Some(&json!({ "handle": handle })))
                .await?;
            *current = Some(handle.to_string());
        }
        self.command(method, suffix, body).await
    }

    /// Close the window `handle` (its tab). It stays named as the current one: no command
    /// names it again, and a command on any other window switches first.
    pub async fn close_window(&self, handle: &str) -> anyhow::Result<()> {
        self.on_window(handle, "DELETE", "/window", None).await?;
        Ok(())
    }

    /// End the session (the driver closes its browser).
    pub async fn delete(&self) -> anyhow::Result<()> {
        let path = format!("/session/{}", self.shared.id);
        request(self.shared.addr, "DELETE", &path, None, COMMAND_PATIENCE).await?;
        Ok(())
    }
}
