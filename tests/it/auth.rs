//! Tokens as a client carries them, over HTTP/1.1 and HTTP/2 against a real server with
//! `--jwt-secret`: publishers by header only, subscribers by header, cookie or query (the
//! first one present wins), expiry, the cookie endpoint, and what every refusal says. The
//! routes each grant opens are in auth_routes.rs.

use crate::util::auth::{
    VIAS, assert_refused, bearer, cookie, post_as, secured, send_with, subscribe_status, token,
    token_expiring_in,
};
use crate::util::{TestServer, Via, assert_one_line, header, text};
use http::StatusCode;
use http::header::{SET_COOKIE, WWW_AUTHENTICATE};

/// A subscribe request: its path and headers, and the status it must get.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode);

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
        let cases: [Case<'_>; 5] = [
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
