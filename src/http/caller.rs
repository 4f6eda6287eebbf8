//! Who is calling: the token a request carries, looked for where each kind of client can
//! put it, and checked against what the handler is about to do.
//!
//! Publishers and admins send `Authorization: Bearer <jwt>`, nothing else: a cookie or a
//! URL would let another page make the browser publish (cross-site request forgery) or leak
//! admin rights into logs and histories. Subscribers cannot set headers from `EventSource`,
//! so for them the order is the header (curl, fetch-based clients), then the `sselab_auth`
//! cookie, then `?access_token=`. The first one present is the one used: a bad header is a
//! 401 even when a good cookie is there too, so a client never silently runs on credentials
//! it did not mean to send.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use super::query_token::QueryToken;
use super::{AppError, AppState};
use crate::auth::{Access, Denied, Grant, Need, TokenError};

/// The cookie a browser carries its token in (set by `POST /api/auth/cookie`).
pub const AUTH_COOKIE: &str = "sselab_auth";

/// The request's candidate tokens and the server's rule, taken from the request's parts.
#[derive(Debug, Clone)]
pub struct Caller {
    access: Access,
    header: Option<Authorization>,
    cookie: Option<String>,
    query: Option<String>,
}

/// What the `Authorization` header held.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Authorization {
    Bearer(String),
    /// Another scheme (`Basic …`), or no token after `Bearer`.
    NotBearer,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Read as text lossily: a stray non-ASCII byte makes a token invalid, not absent.
        let header = parts.headers.get(AUTHORIZATION).map(|value| {
            match bearer_token(&String::from_utf8_lossy(value.as_bytes())) {
                Some(token) => Authorization::Bearer(token.to_string()),
                None => Authorization::NotBearer,
            }
        });
        // HTTP/2 may split cookies over several `cookie` fields; look in all of them.
        let cookie = parts.headers.get_all(COOKIE).iter().find_map(|value| {
            cookie_value(&String::from_utf8_lossy(value.as_bytes()), AUTH_COOKIE)
                .map(str::to_string)
        });
        let query = parts.extensions.get::<QueryToken>().map(|t| t.0.clone());
        Ok(Self {
            access: state.access.clone(),
            header,
            cookie,
            query,
        })
    }
}

impl Caller {
    /// Let the request do what it `need`s, or refuse it: 401 (no token, or a bad one) or 403
    /// (a good token without the grant), each with a `WWW-Authenticate` challenge. The
    /// [`Grant`] says until when: a stream ends when its token stops being accepted.
    pub fn require(&self, need: Need<'_>) -> Result<Grant, AppError> {
        if self.access.is_open() {
            return Ok(Grant::default());
        }
        let token = match need {
            Need::Subscribe(_) => self.subscriber_token(),
            Need::Publish(_) | Need::PublishAny(_) | Need::Admin => self.header_token(),
        };
        let checked = match token {
            Ok(token) => self.access.check(token, need),
            // A malformed header still lets a public topic through, as a stale token does.
            Err(denied) => self.access.check(None, need).map_err(|_| denied),
        };
        checked.map_err(|denied| {
            tracing::debug!(%need, reason = %denied, "request refused");
            AppError::from(denied)
        })
    }

    /// The `Authorization: Bearer` token, the only place a publisher's is taken from.
    pub fn header_token(&self) -> Result<Option<&str>, Denied> {
        match &self.header {
            None => Ok(None),
            Some(Authorization::Bearer(token)) => Ok(Some(token)),
            Some(Authorization::NotBearer) => Err(Denied::Invalid(TokenError::Malformed(
                "the Authorization header must be `Bearer <token>`".into(),
            ))),
        }
    }

    /// A subscriber's token: the header, else the cookie, else the query.
    fn subscriber_token(&self) -> Result<Option<&str>, Denied> {
        if self.header.is_some() {
            return self.header_token();
        }
        Ok(self.cookie.as_deref().or(self.query.as_deref()))
    }
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 7235); `None` otherwise.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of cookie `name` in a `Cookie` header (`a=1; sselab_auth=…; b=2`).
pub fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn the_auth_cookie_is_found_among_others() {
        assert_eq!(
            cookie_value("a=1; sselab_auth=t.o.k; b=2", AUTH_COOKIE),
            Some("t.o.k")
        );
        assert_eq!(cookie_value("sselab_auth=\"q\"", AUTH_COOKIE), Some("q"));
        assert_eq!(cookie_value("xsselab_auth=1; a", AUTH_COOKIE), None);
        assert_eq!(cookie_value("", AUTH_COOKIE), None);
    }
}
