//! Authorization as a client meets it, over HTTP/1.1 and HTTP/2 against a real server with
//! `--jwt-secret`: who may publish, subscribe and administer, where a token may travel, and
//! what every refusal says.

mod util;

use http::StatusCode;
use http::header::{SET_COOKIE, WWW_AUTHENTICATE};
use hyper::body::Incoming;
use util::auth::{SECRET, bearer, cookie, post_as, send_with, token, token_expiring_in};
use util::{Events, TestServer, Via, assert_one_line, header, text};

/// HTTP/1.1 over plain TCP and HTTP/2 over TLS: the two ways browsers arrive.
const VIAS: [Via; 2] = [Via::H1, Via::H2Tls];

async fn secured(extra: &[&str]) -> TestServer {
    let mut flags = vec!["--jwt-secret", SECRET];
    flags.extend(extra);
    TestServer::start(&flags).await
}

/// A refusal: status, a one-line body starting with `start`, and the RFC 6750 challenge
/// with `error` (none for a missing token).
async fn assert_refused(
    response: http::Response<Incoming>,
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
async fn subscribe_status(
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

#[tokio::test]
async fn without_a_key_on_loopback_everything_stays_open() {
    let server = TestServer::start(&[]).await;
    let client = server.client(Via::H1).await;
    assert_eq!(
        post_as(&client, None, "/api/topics/news/events")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(client.get("/api/sessions").await.status(), StatusCode::OK);
    assert_eq!(
        subscribe_status(&server, Via::H2Tls, "/sse/topics/news", &[]).await,
        StatusCode::OK
    );
    // A token sent anyway is simply not looked at.
    let garbage = [("authorization", "Bearer not-a-token")];
    assert_eq!(
        subscribe_status(&server, Via::H1, "/sse/sessions/alice", &garbage).await,
        StatusCode::OK
    );
    let cookie = send_with(
        &client,
        "POST",
        "/api/auth/cookie",
        &[("authorization", "Bearer x")],
        "",
    )
    .await;
    assert_one_line(cookie, StatusCode::BAD_REQUEST, "auth is off").await;
}

#[tokio::test]
async fn publishers_need_a_bearer_token_whose_publish_patterns_match() {
    let server = secured(&[]).await;
    let topics = token(&["topics/*"], &[], false);
    let reader = token(&[], &["*"], false);
    for via in VIAS {
        let client = server.client(via).await;
        let path = "/api/topics/news/events";
        assert_refused(
            post_as(&client, None, path).await,
            StatusCode::UNAUTHORIZED,
            "missing token",
            None,
        )
        .await;
        assert_refused(
            post_as(&client, Some("garbage"), path).await,
            StatusCode::UNAUTHORIZED,
            "invalid token",
            Some("invalid_token"),
        )
        .await;
        assert_refused(
            post_as(&client, Some(&reader), path).await,
            StatusCode::FORBIDDEN,
            "forbidden: to publish to topics/news",
            Some("insufficient_scope"),
        )
        .await;
        assert_eq!(
            post_as(&client, Some(&topics), path).await.status(),
            StatusCode::ACCEPTED,
            "{via:?}"
        );
        let session = post_as(&client, Some(&topics), "/api/sessions/alice/events").await;
        assert_refused(
            session,
            StatusCode::FORBIDDEN,
            "forbidden: to publish to sessions/alice",
            Some("insufficient_scope"),
        )
        .await;

        // Cookies and query tokens are for subscribers only.
        let by_cookie =
            send_with(&client, "POST", path, &[("cookie", &cookie(&topics))], "x").await;
        assert_refused(by_cookie, StatusCode::UNAUTHORIZED, "missing token", None).await;
        let by_query = post_as(&client, None, &format!("{path}?access_token={topics}")).await;
        assert_refused(by_query, StatusCode::UNAUTHORIZED, "missing token", None).await;
        let basic = send_with(
            &client,
            "POST",
            path,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            "x",
        )
        .await;
        assert_refused(
            basic,
            StatusCode::UNAUTHORIZED,
            "invalid token: the Authorization header must be `Bearer",
            Some("invalid_token"),
        )
        .await;
    }
    // A refused publish is refused before its body is read: an unsupported body still gets 401.
    let client = server.client(Via::H1).await;
    let png = send_with(
        &client,
        "POST",
        "/api/topics/news/events",
        &[("content-type", "image/png")],
        "x",
    )
    .await;
    assert_eq!(png.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn subscribers_may_bring_their_token_by_header_cookie_or_query() {
    let server = secured(&[]).await;
    let news = token(&[], &["topics/news"], false);
    let authorization = bearer(&news);
    let by_cookie = cookie(&news);
    for via in VIAS {
        let path = "/sse/topics/news";
        assert_eq!(
            subscribe_status(&server, via, path, &[("authorization", &authorization)]).await,
            StatusCode::OK
        );
        assert_eq!(
            subscribe_status(&server, via, path, &[("cookie", &by_cookie)]).await,
            StatusCode::OK
        );
        // Among other cookies, too.
        let mixed = format!("theme=dark; {by_cookie}; lang=en");
        assert_eq!(
            subscribe_status(&server, via, path, &[("cookie", &mixed)]).await,
            StatusCode::OK
        );
        let query = format!("{path}?lastEventId=0&access_token={news}");
        assert_eq!(
            subscribe_status(&server, via, &query, &[]).await,
            StatusCode::OK
        );

        let client = server.client(via).await;
        assert_refused(
            client.get(path).await,
            StatusCode::UNAUTHORIZED,
            "missing token",
            None,
        )
        .await;
        let client = server.client(via).await;
        let other = client
            .get_with("/sse/topics/sport", &[("authorization", &authorization)])
            .await;
        assert_refused(
            other,
            StatusCode::FORBIDDEN,
            "forbidden: to subscribe to topics/sport",
            Some("insufficient_scope"),
        )
        .await;
    }
}

#[tokio::test]
async fn the_first_credential_present_is_the_only_one_used() {
    let server = secured(&[]).await;
    let good = token(&[], &["*"], false);
    let path = "/sse/sessions/alice";
    let (good_header, bad_header) = (bearer(&good), bearer("bad.token.here"));
    let (good_cookie, bad_cookie) = (cookie(&good), cookie("bad.token.here"));
    let good_query = format!("{path}?access_token={good}");
    let bad_query = format!("{path}?access_token=bad.token.here");
    for via in VIAS {
        let cases: [(&str, Vec<(&str, &str)>, StatusCode); 5] = [
            (
                path,
                vec![("authorization", &good_header), ("cookie", &bad_cookie)],
                StatusCode::OK,
            ),
            (
                path,
                vec![("authorization", &bad_header), ("cookie", &good_cookie)],
                StatusCode::UNAUTHORIZED,
            ),
            (&bad_query, vec![("cookie", &good_cookie)], StatusCode::OK),
            (
                &good_query,
                vec![("cookie", &bad_cookie)],
                StatusCode::UNAUTHORIZED,
            ),
            (
                &good_query,
                vec![("authorization", &bad_header)],
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (path, headers, status) in cases {
            assert_eq!(
                subscribe_status(&server, via, path, &headers).await,
                status,
                "{via:?} {path} {headers:?}"
            );
        }
    }
}

#[tokio::test]
async fn expired_tokens_say_so_and_clock_skew_is_forgiven() {
    let server = secured(&[]).await;
    let client = server.client(Via::H2Tls).await;
    let expired = bearer(&token_expiring_in(-3600, &["*"]));
    let response = client
        .get_with("/sse/topics/news", &[("authorization", &expired)])
        .await;
    let challenge = header(response.headers(), WWW_AUTHENTICATE.as_str()).to_string();
    assert!(
        challenge.contains("error_description=\"expired token"),
        "{challenge}"
    );
    assert_refused(
        response,
        StatusCode::UNAUTHORIZED,
        "expired token: it expired 36",
        Some("invalid_token"),
    )
    .await;
    // Within the leeway of CLOCK_LEEWAY_SECS a just-expired token still works.
    let skewed = bearer(&token_expiring_in(-5, &["*"]));
    assert_eq!(
        subscribe_status(
            &server,
            Via::H1,
            "/sse/topics/news",
            &[("authorization", &skewed)]
        )
        .await,
        StatusCode::OK
    );
}

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
        let id = util::json(created).await["id"]
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
async fn a_browser_turns_its_bearer_token_into_the_auth_cookie() {
    let server = secured(&[]).await;
    let news = token(&[], &["topics/news"], false);
    for via in VIAS {
        let client = server.client(via).await;
        let answer = send_with(
            &client,
            "POST",
            "/api/auth/cookie",
            &[("authorization", &bearer(&news))],
            "",
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK);
        let set = header(answer.headers(), SET_COOKIE.as_str()).to_string();
        let attributes: Vec<&str> = set.split("; ").collect();
        assert_eq!(attributes[0], cookie(&news));
        for wanted in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(attributes.contains(&wanted), "{wanted} in {set}");
        }
        let max_age: u64 = attributes
            .iter()
            .find_map(|a| a.strip_prefix("Max-Age="))
            .and_then(|age| age.parse().ok())
            .expect("Max-Age");
        assert!(
            (3500..=3600).contains(&max_age),
            "Max-Age {max_age} reaches the token's exp"
        );
        text(answer).await;
        // The cookie as the browser would send it back opens the stream.
        assert_eq!(
            subscribe_status(
                &server,
                via,
                "/sse/topics/news",
                &[("cookie", attributes[0])]
            )
            .await,
            StatusCode::OK
        );

        let none = send_with(&client, "POST", "/api/auth/cookie", &[], "").await;
        assert_refused(none, StatusCode::UNAUTHORIZED, "missing token", None).await;
        let expired = bearer(&token_expiring_in(-3600, &["*"]));
        let refused = send_with(
            &client,
            "POST",
            "/api/auth/cookie",
            &[("authorization", &expired)],
            "",
        )
        .await;
        assert_refused(
            refused,
            StatusCode::UNAUTHORIZED,
            "expired token",
            Some("invalid_token"),
        )
        .await;
        let cleared = send_with(&client, "DELETE", "/api/auth/cookie", &[], "").await;
        let set = header(cleared.headers(), SET_COOKIE.as_str()).to_string();
        assert!(
            set.starts_with("sselab_auth=; Max-Age=0;") && set.contains("HttpOnly"),
            "{set}"
        );
        text(cleared).await;
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
