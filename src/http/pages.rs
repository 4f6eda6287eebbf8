//! The small non-streaming endpoints: the seed's clock page (`/`), `/proto` and `/healthz`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{Html, IntoResponse};
use serde_json::json;

use super::AppState;
use crate::server::quic_hint;
use crate::server::{ListenerKind, RequestInfo};

/// JSON about how this very request arrived. `Timing-Allow-Origin: *` lets `/lab`, on
/// another origin, read which protocol its browser negotiated for it
/// (`PerformanceResourceTiming.nextHopProtocol`, empty for a cross-origin answer without it).
pub async fn proto(request: RequestInfo) -> impl IntoResponse {
    let timing = [(header::HeaderName::from_static("timing-allow-origin"), "*")];
    (
        timing,
        Json(json!({
            "http_version": request.protocol(),
            "tls": request.tls,
            "alpn": request.alpn,
            "listener": request.listener.map(ListenerKind::name),
            "remote": request.peer.map(|p| p.to_string()),
            "connection_id": request.connection_id,
            "requests_on_connection": request.request_number,
        })),
    )
}

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let open = state.streams.open_streams();
    let redis = state.hub.redis_status();
    // Degraded, not down: streams stay open and catch up once Redis is back.
    let status = match &redis {
        Some(redis) if !redis.connected => "degraded",
        _ => "ok",
    };
    let mut body = json!({
        "status": status,
        "open_streams": { "http1": open.http1, "http2": open.http2, "http3": open.http3 },
    });
    if let Some(redis) = redis {
        body["redis"] = json!({
            "kind": redis.kind.map(|kind| kind.as_str()),
            "connected": redis.connected,
            "failures": redis.failures,
            "reconnects": redis.reconnects,
            "unconfirmed": redis.unconfirmed,
        });
        if !redis.shards.is_empty() {
            // A cluster: each shard, and which do not answer (what makes it degraded).
            body["redis"]["shards"] = redis
                .shards
                .iter()
                .map(|shard| {
                    json!({
                        "slots": format!("{}-{}", shard.slots.0, shard.slots.1),
                        "master": shard.master,
                        "connected": shard.connected,
                        "failovers": shard.failovers,
                        "resubscribes": shard.resubscribes,
                        "catch_ups": shard.catch_ups,
                    })
                })
                .collect();
            body["redis"]["unreachable"] = redis
                .shards
                .iter()
                .filter(|shard| !shard.connected)
                .map(|shard| format!("{}-{} at {}", shard.slots.0, shard.slots.1, shard.master))
                .collect();
        }
    }
    Json(body)
}

/// The host part of the request's authority (`:authority` on HTTP/2, `Host` on HTTP/1.1).
fn request_host(uri: &Uri, headers: &HeaderMap) -> String {
    uri.host()
        .map(str::to_string)
        .or_else(|| {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let uri: Uri = format!("http://{host}/").parse().ok()?;
            uri.host().map(str::to_string)
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Escape text for an HTML body or attribute.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn index(
    State(state): State<AppState>,
    request: RequestInfo,
    uri: Uri,
    headers: HeaderMap,
) -> Html<String> {
    let host = request_host(&uri, &headers);
    let mut links = String::new();
    for kind in ListenerKind::ALL {
        let Some(port) = state.settings.ports.get(kind) else {
            continue;
        };
        // HTTP/3 at its listener's own address: the one QUIC can be forced on for.
        let url_host = match (kind, &state.settings.h3_host) {
            (ListenerKind::H3, Some(h3_host)) => h3_host.clone(),
            _ => host_for_url(&host),
        };
        let url = format!("{}://{}:{}/", kind.scheme(), url_host, port);
        let mut note = kind.what_it_shows().to_string();
        if kind == ListenerKind::H3 {
            note.push_str(&start_page_quic_note(
                &url_host,
                port,
                state.settings.spki_sha256.as_deref(),
            ));
        }
        // The facts again as data attributes, for whatever reads the page (the tests).
        let (here, here_data) = if Some(kind) == request.listener {
            (" (this one)", " data-here=\"true\"")
        } else {
            ("", "")
        };
        links.push_str(&format!(
            "<li data-listener=\"{name}\" data-url=\"{url}\"{here_data}><a href=\"{url}\">{url}</a> — {note}{here}</li>\n",
            name = kind.name(),
            url = escape(&url)
        ));
    }
    let arrived = format!(
        "{} on the {} listener{}, connection #{}",
        request.protocol(),
        request.listener_name(),
        request
            .alpn
            .as_deref()
            .map(|a| format!(" (ALPN {a})"))
            .unwrap_or_default(),
        request.connection_id
    );
    let arrived_data = format!(
        "data-protocol=\"{}\" data-listener=\"{}\" data-alpn=\"{}\" data-connection=\"{}\"",
        request.protocol(),
        request.listener_name(),
        escape(request.alpn.as_deref().unwrap_or("")),
        request.connection_id
    );
    Html(
        INDEX_HTML
            .replace("{{arrived}}", &escape(&arrived))
            .replace("{{arrived_data}}", &arrived_data)
            .replace("{{links}}", &links),
    )
}

/// The line under the HTTP/3 listener: why a click may not reach it, and the command that
/// does.
fn start_page_quic_note(host_for_url: &str, port: u16, spki_sha256: Option<&str>) -> String {
    format!(
        "<br><span class=\"muted\">A browser uses QUIC only when told to (or after <code>Alt-Svc</code> \
         from the HTTPS listener, for a certificate it trusts). Chromium, in a fresh profile:</span> \
         <code id=\"h3-command\">{}</code>",
        escape(&quic_hint::chromium_command(
            host_for_url,
            port,
            spki_sha256
        ))
    )
}

/// An IPv6 literal needs brackets inside a URL.
fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

const INDEX_HTML: &str = include_str!("assets/index.html");
