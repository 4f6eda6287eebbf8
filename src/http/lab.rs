//! The pages a person looks at: `/lab` (many EventSources against one target, side by side),
//! `/lab/dashboard` (live server counters), and `/orders/{id}` (the seed's order page, made
//! to stop by 204). Plain HTML, CSS and JS embedded in the binary: no build step, no CDN.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::pages::escape;
use super::{AppError, AppState, params};
use crate::server::ListenerKind;

const LAB_HTML: &str = include_str!("assets/lab.html");
const LAB_JS: &str = include_str!("assets/lab.js");
const DASHBOARD_HTML: &str = include_str!("assets/dashboard.html");
const ORDER_HTML: &str = include_str!("assets/order.html");
const STYLE_CSS: &str = include_str!("assets/style.css");

pub async fn lab(State(state): State<AppState>) -> Html<String> {
    let ports = state.settings.ports;
    // The order a person reads them in: the limit, the control, the fix.
    let kinds = [
        ListenerKind::Http,
        ListenerKind::HttpsH1,
        ListenerKind::Https,
    ];
    let targets: Vec<serde_json::Value> = kinds
        .iter()
        .filter_map(|kind| {
            let port = ports.get(*kind)?;
            Some(json!({ "kind": kind.name(), "scheme": kind.scheme(), "port": port }))
        })
        .collect();
    let options: String = kinds
        .iter()
        .filter(|kind| ports.get(**kind).is_some())
        .map(|kind| {
            format!(
                "<option value=\"{0}\">{0} — {1} (:{2})</option>",
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
    let config = json!({ "targets": targets })
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

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LAB_JS,
    )
        .into_response()
}

pub async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
        .into_response()
}
