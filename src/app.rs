//! The one router, served unchanged on every listener, and the state its handlers share.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::conn::{ConnCounters, ListenerKind};
use crate::error::AppError;
use crate::fanout::Fanout;
use crate::hub::Hub;
use crate::metrics::ResponseCounters;
use crate::orders::Orders;
use crate::posted::MAX_BODY_BYTES;
use crate::streams::StreamRegistry;
use crate::tombstones::Tombstones;
use crate::{api, clock, demo, lab, metrics, orders, pages, stats};

/// What the handlers need to know from the flags and the bound listeners.
#[derive(Debug, Clone)]
pub struct Settings {
    pub retry_ms: u64,
    pub timeout: Option<Duration>,
    pub keepalive: Option<Duration>,
    pub tick: Duration,
    /// The demo clock ends at the next whole multiple of this on the wall clock.
    pub demo_period: Duration,
    pub ports: Ports,
    pub cors: AllowOrigin,
}

/// The bound port of each listener that is on, for links between them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    pub http: Option<u16>,
    pub https: Option<u16>,
    pub https_h1: Option<u16>,
}

impl Ports {
    pub fn get(&self, kind: ListenerKind) -> Option<u16> {
        match kind {
            ListenerKind::Http => self.http,
            ListenerKind::Https => self.https,
            ListenerKind::HttpsH1 => self.https_h1,
        }
    }
}

/// Shared by every handler: a cheap clone of `Arc`s.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub streams: StreamRegistry,
    pub demo: Tombstones,
    pub hub: Hub,
    pub orders: Orders,
    pub connections: Arc<ConnCounters>,
    pub fanout: Fanout,
    pub responses: Arc<ResponseCounters>,
}

/// Parse `--cors-origin`: `*` or a comma-separated list of origins.
pub fn cors_origin(text: &str) -> Result<AllowOrigin, String> {
    if text.trim() == "*" {
        return Ok(AllowOrigin::any());
    }
    let origins = text
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = origin.parse::<Uri>().is_ok_and(|uri| {
                uri.scheme().is_some() && uri.host().is_some() && uri.path() == "/"
            });
            if valid && !origin.ends_with('/') {
                HeaderValue::from_str(origin).map_err(|e| e.to_string())
            } else {
                Err(format!(
                    "`{origin}` is not an origin like https://example.com:8443"
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if origins.is_empty() {
        return Err("give `*` or at least one origin".into());
    }
    Ok(AllowOrigin::list(origins))
}

pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(state.settings.cors.clone())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("content-type"),
        ]);
    Router::new()
        .route("/", get(pages::index))
        .route("/proto", get(pages::proto))
        .route("/healthz", get(pages::healthz))
        .route("/lab", get(lab::lab))
        .route("/lab/lab.js", get(lab::script))
        .route("/lab/style.css", get(lab::style))
        .route("/lab/dashboard", get(lab::dashboard))
        .route("/orders/{id}", get(lab::order_page))
        .route("/api/stats", get(stats::api_stats))
        .route("/sse/stats", get(stats::sse_stats))
        .route("/metrics", get(metrics::metrics))
        .route("/sse/hello", get(clock::hello))
        .route("/sse/demo", get(demo::demo))
        .route("/sse/sessions/{id}", get(api::subscribe_session))
        .route("/sse/topics/{name}", get(api::subscribe_topic))
        .route("/sse/orders/{id}", get(orders::subscribe_order))
        .route("/getOrderDetail", get(orders::seed_order_detail))
        .route("/api/sessions", get(api::list_sessions))
        .route(
            "/api/sessions/{id}",
            get(api::get_session).delete(api::delete_session),
        )
        .route("/api/sessions/{id}/events", post(api::post_to_session))
        .route("/api/broadcast", post(api::broadcast))
        .route("/api/topics", get(api::list_topics))
        .route("/api/topics/{name}/events", post(api::post_to_topic))
        .route("/api/orders", post(orders::create_order))
        .route("/api/orders/{id}", get(orders::get_order))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_responses,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

async fn not_found(uri: Uri) -> AppError {
    AppError::not_found(format!("no such path: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
