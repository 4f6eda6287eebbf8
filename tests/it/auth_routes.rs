//! What each grant opens, over HTTP/1.1 and HTTP/2 against a real server with
//! `--jwt-secret`: the admin endpoints, public topics, sessions and orders as channels, and
//! the pages, health, metrics, stats and clocks that stay open to everyone.

use crate::util::auth::{
    VIAS, assert_refused, bearer, cookie, post_as, secured, send_with, subscribe_status, token,
    token_expiring_in,
};
use crate::util::{Events, Via, text};
use http::StatusCode;

#[tokio::test]
async fn admin_endpoints_need_admin_true() {
    let server = secured(&[]).await;
    let everything = token(&["*"], &["*"], false);
    let admin = token(&[], &[], true);
    for via in VIAS {
        let client = server.client(via).await;
        for (method, path, done) in [
            ("GET", "/api/sessions", StatusCode::OK),
            ("GET", "/api/topics", StatusCode::OK),
            ("GET", "/api/sessions/nobody", StatusCode::NOT_FOUND),
            ("DELETE", "/api/sessions/nobody", StatusCode::NOT_FOUND),
            ("POST", "/api/broadcast", StatusCode::ACCEPTED),
        ] {
            let anonymous = send_with(&client, method, path, &[], "x").await;
            assert_refused(anonymous, StatusCode::UNAUTHORIZED, "missing token", None).await;
            let not_admin = send_with(
                &client,
                method,
                path,
                &[("authorization", &bearer(&everything))],
                "x",
            )
            .await;
            assert_refused(
                not_admin,
                StatusCode::FORBIDDEN,
                "forbidden: to use the admin endpoints",
                Some("insufficient_scope"),
            )
            .await;
            let answer = send_with(
                &client,
                method,
                path,
                &[("authorization", &bearer(&admin))],
                "x",
            )
            .await;
            assert_eq!(answer.status(), done, "{via:?} {method} {path}");
            text(answer).await;
        }
    }
}

#[tokio::test]
async fn public_topics_are_read_without_a_token_but_not_written() {
    let server = secured(&["--public-topics", "public.*", "--public-topics", "lobby"]).await;
    for via in VIAS {
        for path in ["/sse/topics/public.news", "/sse/topics/lobby"] {
            assert_eq!(
                subscribe_status(&server, via, path, &[]).await,
                StatusCode::OK,
                "{path}"
            );
        }
        // A stale cookie or a malformed header does not get in the way of a public topic.
        let stale = cookie(&token_expiring_in(-3600, &[]));
        assert_eq!(
            subscribe_status(&server, via, "/sse/topics/lobby", &[("cookie", &stale)]).await,
            StatusCode::OK
        );
        assert_eq!(
            subscribe_status(
                &server,
                via,
                "/sse/topics/lobby",
                &[("authorization", "Basic x")]
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            subscribe_status(&server, via, "/sse/topics/private", &[]).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            subscribe_status(&server, via, "/sse/sessions/lobby", &[]).await,
            StatusCode::UNAUTHORIZED
        );
        let client = server.client(via).await;
        let write = post_as(&client, None, "/api/topics/lobby/events").await;
        assert_refused(write, StatusCode::UNAUTHORIZED, "missing token", None).await;
    }
}

#[tokio::test]
async fn sessions_are_channels_like_topics() {
    let server = secured(&[]).await;
    let alice = token(&["sessions/alice"], &["sessions/alice"], false);
    let client = server.client(Via::H2Tls).await;
    let mut events = Events::new(
        client
            .get_with("/sse/sessions/alice", &[("authorization", &bearer(&alice))])
            .await,
    );
    assert_eq!(events.status, StatusCode::OK);
    events.connected().await;
    let posted = post_as(&client, Some(&alice), "/api/sessions/alice/events").await;
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    assert_eq!(events.next().await.expect("the posted event").data, "hello");
    let bob = client
        .get_with("/sse/sessions/bob", &[("authorization", &bearer(&alice))])
        .await;
    assert_refused(
        bob,
        StatusCode::FORBIDDEN,
        "forbidden: to subscribe to sessions/bob",
        Some("insufficient_scope"),
    )
    .await;
}

#[tokio::test]
async fn orders_are_created_with_publish_orders_and_followed_as_orders_id() {
    let server = secured(&[]).await;
    let shop = token(&["orders/*"], &["orders/*"], false);
    let topics = token(&["topics/*"], &["topics/*"], false);
    for via in VIAS {
        let client = server.client(via).await;
        let body = r#"{"steps": 2, "interval_ms": 50}"#;
        let create = |token: Option<String>| {
            let client = client.clone();
            async move {
                let auth = token.map(|t| bearer(&t));
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let mut request = client
                    .request("POST", "/api/orders")
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                client
                    .send(
                        request
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .expect("request"),
                    )
                    .await
            }
        };
        assert_refused(
            create(None).await,
            StatusCode::UNAUTHORIZED,
            "missing token",
            None,
        )
        .await;
        assert_refused(
            create(Some(topics.clone())).await,
            StatusCode::FORBIDDEN,
            "forbidden: to publish to orders/*",
            Some("insufficient_scope"),
        )
        .await;
        let created = create(Some(shop.clone())).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = crate::util::json(created).await["id"]
            .as_str()
            .expect("id")
            .to_string();

        let own = token(&[], &[&format!("orders/{id}")], false);
        let follow = format!("/sse/orders/{id}");
        assert_eq!(
            subscribe_status(&server, via, &follow, &[("authorization", &bearer(&own))]).await,
            StatusCode::OK
        );
        assert_eq!(
            subscribe_status(
                &server,
                via,
                &follow,
                &[("authorization", &bearer(&topics))]
            )
            .await,
            StatusCode::FORBIDDEN
        );
        // The seed's URL, with the token in the query as an EventSource would carry it.
        let seed = format!("/getOrderDetail?orderId={id}&access_token={own}");
        let client = server.client(via).await;
        let mut events = Events::new(client.get(&seed).await);
        assert_eq!(events.status, StatusCode::OK);
        assert_eq!(events.connected().await["order_id"], id.as_str());
        let client = server.client(via).await;
        assert_eq!(
            client
                .get_with(
                    &format!("/api/orders/{id}"),
                    &[("authorization", &bearer(&own))]
                )
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            client.get(&format!("/api/orders/{id}")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn pages_health_metrics_stats_and_the_clocks_stay_open() {
    let server = secured(&[]).await;
    for via in VIAS {
        let client = server.client(via).await;
        for path in [
            "/",
            "/proto",
            "/healthz",
            "/metrics",
            "/lab",
            "/lab/dashboard",
            "/orders/any",
            "/api/stats",
            "/sselab.js",
        ] {
            let answer = client.get(path).await;
            assert_eq!(answer.status(), StatusCode::OK, "{via:?} {path}");
            text(answer).await;
        }
        for path in ["/sse/hello", "/sse/demo?id=open", "/sse/stats"] {
            let status = if path == "/sse/stats" {
                // No `connected` event on the stats feed: its status is enough.
                server.client(via).await.get(path).await.status()
            } else {
                subscribe_status(&server, via, path, &[]).await
            };
            assert_eq!(status, StatusCode::OK, "{via:?} {path}");
        }
    }
}
