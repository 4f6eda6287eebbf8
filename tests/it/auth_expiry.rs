//! A stream lives as long as its token: with `--jwt-leeway 0` it ends by itself in the first
//! second the token is refused, with a last `token-expired` frame, and the reconnect with
//! the same token gets the 401 — over HTTP/1.1, HTTP/2 and HTTP/3, whichever way the token
//! came (query, cookie, header). A public topic read with the same token is not ended.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use http::{Response, StatusCode};
use serde_json::json;
use sselab::auth::{Verifier, VerifyKey};
use sselab::client::ResponseBody;

use crate::util::auth::{
    SECRET, assert_refused, bearer, cookie, post_as, secured, token, token_expiring_in,
};
use crate::util::{Events, TestServer, Via};

/// The Unix clock in seconds with a fraction: what the server's deadline is measured on.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// GET `path` over `via` with `token`: in the query over HTTP/1.1, as the cookie over HTTP/2,
/// in the header over HTTP/3 — each way a subscriber may carry it.
async fn get(server: &TestServer, via: Via, path: &str, token: &str) -> Response<ResponseBody> {
    let client = server.client(via).await;
    match via {
        Via::H1 => client.get(&format!("{path}?access_token={token}")).await,
        Via::H2Tls => client.get_with(path, &[("cookie", &cookie(token))]).await,
        _ => {
            client
                .get_with(path, &[("authorization", &bearer(token))])
                .await
        }
    }
}

/// A subscriber past its `connected` event, and that event's `id:`.
async fn open(server: &TestServer, via: Via, path: &str, token: &str) -> (Events, String) {
    let mut events = Events::new(get(server, via, path, token).await);
    assert_eq!(events.status, StatusCode::OK, "{via:?} {path}");
    let connected = events.connected().await;
    (events, connected["id"].as_str().expect("an id").to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_when_its_token_does_and_the_reconnect_gets_401() {
    let server = secured(&[
        "--jwt-leeway",
        "0",
        "--public-topics",
        "open",
        "--retry",
        "700",
        "--retry-jitter",
        "0",
    ])
    .await;
    let reader = token_expiring_in(4, &["topics/*"]);
    let exp = Verifier::new(VerifyKey::hs256(SECRET).expect("key"))
        .verify(&reader)
        .expect("good for 4 s")
        .exp;
    let vias = [Via::H1, Via::H2Tls, Via::H3];
    let mut public = Vec::new();
    for via in vias {
        public.push(open(&server, via, "/sse/topics/open", &reader).await.0);
    }

    let ends = vias.map(|via| {
        let (server, reader) = (&server, &reader);
        async move {
            let (mut private, id) = open(server, via, "/sse/topics/news", reader).await;
            let last = private.next().await.expect("a last frame");
            let ended_at = unix_now();
            assert_eq!(private.next().await, None, "{via:?}: it ends after it");
            assert_eq!(last.event, "token-expired", "{via:?}");
            assert_eq!(last.retry, Some(700), "{via:?}");
            assert_eq!(last.id, id, "{via:?}: no id, Last-Event-ID stays put");
            let data: serde_json::Value = serde_json::from_str(&last.data).expect("JSON");
            assert_eq!(data, json!({"exp": exp, "retry_ms": 700}), "{via:?}");
            // Not a moment before the token is refused, and promptly once it is.
            let refused_from = (exp + 1) as f64;
            eprintln!(
                "{via:?}: ended {:.3} s into the first refused second",
                ended_at - refused_from
            );
            assert!(
                (refused_from..refused_from + 5.0).contains(&ended_at),
                "{via:?}: ended at {ended_at}, refused from {refused_from}"
            );
            // The reconnect, as the browser makes it, is refused: the end and the 401 agree.
            let again = get(server, via, "/sse/topics/news", reader).await;
            assert_refused(
                again,
                StatusCode::UNAUTHORIZED,
                "expired token",
                Some("invalid_token"),
            )
            .await;
        }
    });
    join_all(ends).await;
    let closed = server.state.streams.stats().close_reasons;
    assert_eq!(closed.get("token-expired"), Some(&3));

    // The public streams, opened with the same token, outlive it and still deliver.
    let publisher = token(&["topics/open"], &[], false);
    let client = server.client(Via::H1).await;
    let posted = post_as(&client, Some(&publisher), "/api/topics/open/events").await;
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    for (via, mut events) in vias.into_iter().zip(public) {
        let event = events
            .next_within(Duration::from_secs(5))
            .await
            .expect("in time")
            .expect("still open");
        assert_eq!(
            (event.event.as_str(), event.data.as_str()),
            ("message", "hello"),
            "{via:?}"
        );
    }
}
