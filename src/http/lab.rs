//! The pages a person looks at: `/lab` (many EventSources against one target, side by side,
//! then a probe of what else that origin still serves), `/lab/dashboard` (live server
//! counters and their chart), and `/orders/{id}` (the seed's order page, made to stop by 204). Plain HTML,
//! CSS and JS embedded in the binary: no build step, no CDN.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::pages::escape;
use super::{AppError, AppState, params};
use crate::server::ListenerKind;
use crate::server::quic_hint;

const LAB_HTML: &str = include_str!("assets/lab.html");
const LAB_JS: &str = include_str!("assets/lab.js");
const PROBE_JS: &str = include_str!("assets/probe.js");
const CHART_JS: &str = include_str!("assets/chart.js");
const PROBE_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="#1a7f37"/></svg>"##;
const DASHBOARD_HTML: &str = include_str!("assets/dashboard.html");
const ORDER_HTML: &str = include_str!("assets/order.html");
const STYLE_CSS: &str = include_str!("assets/style.css");

pub async fn lab(State(state): State<AppState>) -> Html<String> {
    let ports = state.settings.ports;
    // The order a person reads them in: the limit, the control, the fix, and QUIC.
    let kinds = [
        ListenerKind::Http,
        ListenerKind::HttpsH1,
        ListenerKind::Https,
        ListenerKind::H3,
    ];
    let targets: Vec<serde_json::Value> = kinds
        .iter()
        .filter_map(|kind| {
            let port = ports.get(*kind)?;
            // The h3 target at its listener's own address (see Settings::h3_host); the others
            // at the host this page was opened with.
            let host = (*kind == ListenerKind::H3)
                .then(|| state.settings.h3_host.clone())
                .flatten();
            Some(
                json!({ "kind": kind.name(), "scheme": kind.scheme(), "port": port, "host": host }),
            )
        })
        .collect();
    let options: String = kinds
        .iter()
        .filter(|kind| ports.get(**kind).is_some())
        .map(|kind| {
            format!(
                "<option value=\"{0}\" data-port=\"{2}\">{0} — {1} (:{2})</option>",
                kind.name(),
                kind.label(),
                ports.get(*kind).unwrap_or_default()
            )
        })
        .collect();
    let https_links: Vec<String> = [ListenerKind::Https, ListenerKind::HttpsH1]
        .iter()
        .filter_map(|kind| ports.get(*kind).map(|port| format!("<code>:{port}</code>")))
        .collect();
    // What an h3 run says when the browser did not use QUIC.
    let quic_command = ports
        .h3
        .zip(state.settings.h3_host.as_deref())
        .map(|(port, host)| {
            quic_hint::chromium_command(host, port, state.settings.spki_sha256.as_deref())
        });
    let config = json!({
        "targets": targets,
        "quic_command": quic_command,
        "max_topics_per_stream": state.settings.max_topics_per_stream,
    })
    .to_string()
    .replace('<', "\\u003c");
    Html(
        LAB_HTML
            .replace("{{targets}}", &options)
            .replace("{{https_links}}", &https_links.join(" and "))
            .replace("{{config}}", &config),
    )
}

pub async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD_HTML)
}

pub async fn order_page(Path(id): Path<String>) -> Result<Html<String>, AppError> {
    let id = params::client_id(&id)?;
    Ok(Html(ORDER_HTML.replace("{{id}}", &escape(&id))))
}

/// A file embedded in the binary, with its content type.
pub(super) fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub(super) const JS: &str = "text/javascript; charset=utf-8";

pub async fn script() -> Response {
    asset(JS, LAB_JS)
}

pub async fn probe_script() -> Response {
    asset(JS, PROBE_JS)
}

pub async fn chart_script() -> Response {
    asset(JS, CHART_JS)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// The image the lab's probe loads: tiny, and never from a cache (every probe must reach
/// the server, or it measures nothing).
pub async fn probe_image() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PROBE_SVG,
    )
        .into_response()
}
