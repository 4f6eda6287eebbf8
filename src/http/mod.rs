//! The HTTP layer: one router ([`app`]) served unchanged on every listener, the state its
//! handlers share, the error type that maps every lower layer's refusals to a status code,
//! and one file of handlers per feature.
//!
//! It builds on [`crate::sse`] and [`crate::pubsub`] (what to send), [`crate::auth`] (who
//! may) and [`crate::server`] (what each request's connection is); it never sees the
//! command line.

pub mod alt_svc;
mod auth_cookie;
pub mod caller;
mod clock;
mod demo;
pub mod error;
mod hub;
mod lab;
pub mod lab_slots;
pub mod metrics;
mod orders;
mod pages;
pub mod params;
pub mod posted;
pub mod query_token;
pub mod refusals;
mod remedies;
mod state;
mod stats;
mod streaming;
mod trace;
mod unread_body;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Uri};
use axum::routing::{get, post};
use tower_http::cors::CorsLayer;

pub use demo::ended_demos;
pub use error::AppError;
use posted::MAX_BODY_BYTES;
pub use state::{AppState, Settings, cors_origin};

/// The whole router, served unchanged on every listener.
pub fn app(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(state.settings.cors.clone())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("authorization"),
        ]);
    Router::new()
        .route("/", get(pages::index))
        .route("/proto", get(pages::proto))
        .route("/healthz", get(pages::healthz))
        .route("/lab", get(lab::lab))
        .route("/lab/lab.js", get(lab::script))
        .route("/lab/probe.js", get(lab::probe_script))
        .route("/lab/probe.svg", get(lab::probe_image))
        .route("/lab/chart.js", get(lab::chart_script))
        .route("/lab/style.css", get(lab::style))
        .route("/lab/dashboard", get(lab::dashboard))
        .route("/lab/remedies.js", get(remedies::lab_section))
        .route("/sselab.js", get(remedies::library))
        .route("/sselab-worker.js", get(remedies::worker))
        .route("/orders/{id}", get(lab::order_page))
        .route("/api/stats", get(stats::api_stats))
        .route("/metrics", get(metrics::metrics))
        .merge(event_streams(state.clone()))
        .route("/api/sessions", get(hub::list_sessions))
        .route(
            "/api/sessions/{id}",
            get(hub::get_session).delete(hub::delete_session),
        )
        .route("/api/sessions/{id}/events", post(hub::post_to_session))
        .route("/api/broadcast", post(hub::broadcast))
        .route("/api/topics", get(hub::list_topics))
        .route("/api/topics/{name}/events", post(hub::post_to_topic))
        .route("/api/orders", post(orders::create_order))
        .route("/api/orders/{id}", get(orders::get_order))
        .route(
            "/api/auth/cookie",
            post(auth_cookie::set).delete(auth_cookie::clear),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_responses,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            alt_svc::advertise,
        ))
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            state,
            metrics::count_preflights,
        ))
        .layer(axum::middleware::from_fn(trace::request_span))
        .layer(axum::middleware::from_fn(
            unread_body::drain_before_answering,
        ))
        // Outermost: `?access_token=` leaves the URI before anything can log it.
        .layer(axum::middleware::from_fn(query_token::lift))
}

/// Every SSE endpoint, under the middleware that answers an EventSource's refusal with a
/// stream it comes back from ([`refusals`]).
fn event_streams(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/sse/stats", get(stats::sse_stats))
        .route("/sse/hello", get(clock::hello))
        .route("/sse/demo", get(demo::demo))
        .route("/sse/sessions/{id}", get(hub::subscribe_session))
        .route("/sse/topics", get(hub::subscribe_topics))
        .route("/sse/topics/{name}", get(hub::subscribe_topic))
        .route("/sse/orders/{id}", get(orders::subscribe_order))
        .route("/getOrderDetail", get(orders::seed_order_detail))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            refusals::answer_event_sources,
        ))
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

/// `/metrics` alone, for the `--metrics` listener.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}
