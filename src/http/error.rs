//! The one error type handlers return: a status and a one-line plain-text reason — and the
//! one place where the lower layers' own errors become status codes.
//!
//! A browser's EventSource stops on any non-200 answer, so a refusal a later try can pass
//! (a `503`) also carries its [`Refused`] facts on the response: [`super::refusals`] turns it
//! into a stream that says when to come back when the request came from an EventSource.
//! Every other answer here is final for a browser; curl users read the line.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Denied;
use crate::pubsub::hub::{Cap, HubError};
use crate::pubsub::orders::OrderError;
use crate::sse::{RefusalReason, StreamRefused};

/// Seconds a client refused for capacity (or at shutdown) is told to wait, in `Retry-After`.
pub const RETRY_AFTER_SECS: u64 = 5;
/// Seconds a publish refused because Redis is unreachable is told to wait: the link retries
/// with a backoff of at most 5 s, so by then it has tried again.
pub const REDIS_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for `Retry-After` on 503.
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401 or 403 (RFC 6750).
    pub www_authenticate: Option<String>,
    /// Why a `503` refused: set exactly when a later try can pass.
    pub refused: Option<RefusalReason>,
}

/// What a `503` answer carries in its extensions for [`super::refusals`] and the metrics:
/// why, the one-line reason, and the `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: RefusalReason,
    pub message: String,
    pub retry_after_secs: u64,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        // One line, always: a reason built from user input must not split the body.
        let message = message.into().replace(['\r', '\n'], " ");
        Self {
            status,
            message,
            retry_after: None,
            www_authenticate: None,
            refused: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// `503` + `Retry-After`: refused for now, for `reason`.
    pub fn unavailable(
        reason: RefusalReason,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            refused: Some(reason),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

/// RFC 6750's challenge: `Bearer realm="sselab"`, plus `error` and `error_description`
/// when a token was given. The description is the body's reason made header-safe.
fn bearer_challenge(error: Option<&str>, description: &str) -> String {
    let mut challenge = String::from("Bearer realm=\"sselab\"");
    if let Some(error) = error {
        let description: String = description
            .chars()
            .map(|c| match c {
                ' ' | '!' | '#'..='[' | ']'..='~' => c,
                _ => '\'',
            })
            .collect();
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{description}\""
        ));
    }
    challenge
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            if let Some(reason) = self.refused {
                response.extensions_mut().insert(Refused {
                    reason,
                    message: self.message,
                    retry_after_secs: secs,
                });
            }
        }
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<StreamRefused> for AppError {
    fn from(refused: StreamRefused) -> Self {
        let reason = match refused {
            StreamRefused::ShuttingDown => RefusalReason::ShuttingDown,
            StreamRefused::Full { .. } => RefusalReason::MaxStreams,
        };
        AppError::unavailable(reason, refused.to_string(), RETRY_AFTER_SECS)
    }
}

/// No token or a bad one: 401 with a challenge; a good token without the grant: 403.
impl From<Denied> for AppError {
    fn from(denied: Denied) -> Self {
        let reason = denied.to_string();
        let (status, error) = match &denied {
            Denied::Missing => (StatusCode::UNAUTHORIZED, None),
            Denied::Invalid(_) => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            Denied::Forbidden(_) => (StatusCode::FORBIDDEN, Some("insufficient_scope")),
        };
        Self {
            www_authenticate: Some(bearer_challenge(error, &reason)),
            ..Self::new(status, reason)
        }
    }
}

impl From<HubError> for AppError {
    fn from(error: HubError) -> Self {
        match error {
            HubError::NotFound { what, id } => AppError::not_found(format!(
                "no {what} {id:?} (never subscribed, expired after --session-linger, or deleted)"
            )),
            // Subscribe handlers answer a deleted session's reconnect with 204 themselves
            // (that is what stops EventSource); anywhere else it is simply gone.
            HubError::Gone => AppError::new(StatusCode::GONE, "this session was deleted"),
            HubError::Conflict => AppError::new(
                StatusCode::CONFLICT,
                "this session id is already connected (--same-id reject)",
            ),
            HubError::Full { cap, max } => AppError::unavailable(
                match cap {
                    Cap::Sessions => RefusalReason::MaxSessions,
                    Cap::Topics => RefusalReason::MaxTopics,
                },
                format!("{} {max} reached; retry later", cap.flag()),
                RETRY_AFTER_SECS,
            ),
            HubError::Unavailable(reason) => AppError::unavailable(
                RefusalReason::RedisUnavailable,
                // The reason says whether a failed publish may still go out.
                format!("redis is unavailable ({reason}); retry later"),
                REDIS_RETRY_AFTER_SECS,
            ),
        }
    }
}

impl From<OrderError> for AppError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(reason) => AppError::bad_request(reason),
            OrderError::Busy { .. } => AppError::unavailable(
                RefusalReason::OrdersBusy,
                error.to_string(),
                RETRY_AFTER_SECS,
            ),
            OrderError::Unavailable(_) => AppError::unavailable(
                RefusalReason::RedisUnavailable,
                error.to_string(),
                REDIS_RETRY_AFTER_SECS,
            ),
            OrderError::NotFound { .. } => AppError::not_found(error.to_string()),
            // The order handler answers this with 204 itself; see `HubError::Gone`.
            OrderError::Finished => AppError::new(StatusCode::GONE, "the order has finished"),
        }
    }
}
