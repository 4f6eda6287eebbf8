//! How a browser gets its token into the `sselab_auth` cookie: `POST /api/auth/cookie` with
//! `Authorization: Bearer <jwt>` (a page's `fetch`) answers with the cookie set, and
//! `DELETE /api/auth/cookie` clears it.
//!
//! The cookie is `HttpOnly` (page scripts cannot read it back), `Secure` (sent over HTTPS
//! only; browsers also allow it on `localhost`) and `SameSite=Strict` (never sent from
//! another site's page), lives at most until the token expires, and is only ever read for
//! subscribing, never for publishing or admin (see [`super::caller`]).

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::caller::{AUTH_COOKIE, bearer_token};
use super::{AppError, AppState};
use crate::auth::{Denied, TokenError, now};

const ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Strict";

/// `POST /api/auth/cookie`: check the bearer token and set it as the cookie.
pub async fn set(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(verifier) = state.access.verifier() else {
        return Err(AppError::bad_request(
            "auth is off on this server (no --jwt-secret or --jwt-public-key): no cookie is needed",
        ));
    };
    let token = match headers.get(axum::http::header::AUTHORIZATION) {
        None => return Err(Denied::Missing.into()),
        Some(value) => value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Denied::Invalid(TokenError::Malformed(
                "the Authorization header must be `Bearer <token>`".into(),
            ))
        })?,
    };
    let claims = verifier.verify(token).map_err(Denied::Invalid)?;
    let max_age = claims.exp.saturating_sub(now());
    let cookie = format!("{AUTH_COOKIE}={token}; Max-Age={max_age}; {ATTRIBUTES}");
    Ok(with_cookie(
        cookie,
        json!({ "cookie": AUTH_COOKIE, "max_age": max_age }),
    ))
}

/// `DELETE /api/auth/cookie`: tell the browser to forget the cookie.
pub async fn clear() -> Response {
    let cookie = format!("{AUTH_COOKIE}=; Max-Age=0; {ATTRIBUTES}");
    with_cookie(cookie, json!({ "cookie": AUTH_COOKIE, "cleared": true }))
}

fn with_cookie(cookie: String, body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    // A verified token is base64url and dots, so it is a valid header value; if it ever
    // were not, the answer says so rather than setting half a cookie.
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            headers.insert(SET_COOKIE, value);
        }
        Err(_) => {
            return AppError::bad_request("the token cannot be stored in a cookie").into_response();
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
