//! Keys and tokens for the authorization tests: the HS256 secret every auth test server
//! uses, the RSA key files in tests/fixtures/jwt, and requests that carry a token.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use sselab::auth::{Claims, Grants, Pattern, SignKey, Signer, now};
use sselab::client::ResponseBody;

use http::StatusCode;
use http::header::WWW_AUTHENTICATE;

use super::{Client, Events, TestServer, Via, assert_one_line, header};

/// Long enough for HS256's 32-byte minimum.
pub const SECRET: &str = "sselab-test-secret-at-least-32-bytes-long";

/// A file in tests/fixtures/jwt (see its README).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

pub fn hs256() -> Signer {
    Signer::new(SignKey::hs256(SECRET).expect("test secret"))
}

pub fn grants(publish: &[&str], subscribe: &[&str], admin: bool) -> Grants {
    let patterns = |list: &[&str]| {
        list.iter()
            .map(|p| Pattern::parse(p).expect("test pattern"))
            .collect()
    };
    Grants {
        publish: patterns(publish),
        subscribe: patterns(subscribe),
        admin,
    }
}

/// An HS256 token good for an hour.
pub fn token(publish: &[&str], subscribe: &[&str], admin: bool) -> String {
    hs256()
        .sign(grants(publish, subscribe, admin), Duration::from_secs(3600))
        .expect("signs")
}

/// An HS256 token with `exp` this many seconds from now (negative: in the past).
pub fn token_expiring_in(seconds: i64, subscribe: &[&str]) -> String {
    let exp = now().saturating_add_signed(seconds);
    hs256()
        .sign_claims(&Claims {
            exp,
            nbf: None,
            iat: None,
            sselab: grants(&[], subscribe, false),
        })
        .expect("signs")
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn cookie(token: &str) -> String {
    format!("sselab_auth={token}")
}

/// A request with extra headers and a text body.
pub async fn send_with(
    client: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<ResponseBody> {
    let mut request = client
        .request(method, path)
        .header(http::header::CONTENT_TYPE, "text/plain");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client
        .send(
            request
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("request"),
        )
        .await
}

/// POST text to `path` with `Authorization: Bearer token` (none when `token` is `None`).
pub async fn post_as(client: &Client, token: Option<&str>, path: &str) -> Response<ResponseBody> {
    let authorization = token.map(bearer);
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    send_with(client, "POST", path, &headers, "hello").await
}

/// HTTP/1.1 over plain TCP and HTTP/2 over TLS: the two ways browsers arrive.
pub const VIAS: [Via; 2] = [Via::H1, Via::H2Tls];

pub async fn secured(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--jwt-secret", SECRET];
    flags.extend(extra);
    TestServer::start(&flags).await
}

/// A refusal: status, a one-line body starting with `start`, and the RFC 6750 challenge
/// with `error` (none for a missing token).
pub async fn assert_refused(
    response: http::Response<ResponseBody>,
    status: StatusCode,
    start: &str,
    error: Option<&str>,
) {
    let challenge = header(response.headers(), WWW_AUTHENTICATE.as_str()).to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"sselab\""),
        "{challenge:?}"
    );
    match error {
        Some(error) => assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{challenge}"
        ),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
    assert_one_line(response, status, start).await;
}

/// GET an SSE path with these headers and give its status (reading `connected` when 200).
pub async fn subscribe_status(
    server: &TestServer,
    via: Via,
    path: &str,
    headers: &[(&str, &str)],
) -> StatusCode {
    let client = server.client(via).await;
    let mut events = Events::new(client.get_with(path, headers).await);
    if events.status == StatusCode::OK {
        events.connected().await;
    }
    events.status
}
