//! Authorization from the command line: the safe default (no key is fine on loopback only),
//! the banner's auth line, flag and key-file errors that name their flag or file,
//! `sselab token` round-tripping through a server, and `?access_token=` kept out of the log.

use crate::util::auth::{SECRET, bearer, fixture};
use crate::util::bin::{Running, run, sselab};
use crate::util::{Client, Events, plain};
use http::StatusCode;
use sselab::auth::{Verifier, VerifyKey, now};

const LOOPBACK: [&str; 6] = [
    "--http",
    "127.0.0.1:0",
    "--https",
    "off",
    "--https-h1",
    "off",
];

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_non_loopback_listener_without_a_key_refuses_to_start_naming_it() {
    for (args, named) in [
        (
            ["--http", "0.0.0.0:0", "--https", "off", "--https-h1", "off"],
            "--http 0.0.0.0:0",
        ),
        (
            [
                "--http",
                "127.0.0.1:0",
                "--https",
                "[::]:0",
                "--https-h1",
                "off",
            ],
            "--https [::]:0",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert_dir = dir.path().join("certs");
        let mut command = sselab(&args);
        command.args(["--cert-dir", &cert_dir.display().to_string()]);
        let output = run(&mut command);
        assert!(!output.status.success(), "{args:?}");
        let stderr = stderr_of(&output);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        for says in [
            "refusing to start",
            named,
            "--jwt-secret",
            "--allow-anonymous",
        ] {
            assert!(stderr.contains(says), "{says:?} in {stderr}");
        }
        assert!(!cert_dir.exists(), "refused before anything was set up");
    }
}

#[test]
fn allow_anonymous_starts_anyway_and_the_banner_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = sselab(&["--http", "0.0.0.0:0", "--https", "off", "--https-h1", "off"]);
    command.env("SSELAB_ALLOW_ANONYMOUS", "true");
    let server = Running::start(&mut command, dir.path());
    assert_eq!(
        server.banner.last().map(String::as_str),
        Some("auth: off (--allow-anonymous)")
    );
    server.stop();
}

#[test]
fn the_banner_says_whether_auth_is_on_and_with_which_key() {
    let public = fixture("rs256-public.pem").display().to_string();
    let cases: [(Vec<&str>, Option<&str>, String); 4] = [
        (
            vec!["--http", "127.0.0.1:0"],
            None,
            "auth: off (loopback only)".into(),
        ),
        (
            vec!["--http", "127.0.0.1:0"],
            Some(SECRET),
            "auth: on (HS256 from --jwt-secret)".into(),
        ),
        (
            vec![
                "--http",
                "127.0.0.1:0",
                "--jwt-public-key",
                &public,
                "--public-topics",
                "news,public.*",
            ],
            None,
            format!(
                "auth: on (RS256 from --jwt-public-key {public}); public: topics/news, topics/public.*"
            ),
        ),
        // With a key, a non-loopback listener is fine.
        (
            vec!["--http", "0.0.0.0:0"],
            Some(SECRET),
            "auth: on (HS256 from --jwt-secret)".into(),
        ),
    ];
    for (extra, secret, last) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        // Each case picks its own --http.
        let mut command = sselab(&LOOPBACK[2..]);
        command.args(&extra);
        if let Some(secret) = secret {
            command.env("SSELAB_JWT_SECRET", secret);
        }
        let server = Running::start(&mut command, dir.path());
        assert!(
            server.banner[0].starts_with("listening http "),
            "{:?}",
            server.banner
        );
        assert_eq!(server.banner.last(), Some(&last));
        let log = server.stop();
        assert!(!log.contains(SECRET), "the secret is never logged");
    }
}

#[test]
fn bad_auth_flags_and_key_files_name_the_flag_or_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").expect("write");
    let path = |p: &std::path::Path| p.display().to_string();
    let (garbage, missing) = (path(&garbage), path(&dir.path().join("missing.pem")));
    let (private, public) = (
        path(&fixture("rs256-private.pem")),
        path(&fixture("rs256-public.pem")),
    );
    let (small, sec1) = (
        path(&fixture("rsa1024-public.pem")),
        path(&fixture("es256-sec1.pem")),
    );
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--jwt-secret", "too-short"],
            vec!["--jwt-secret", "9 bytes", "32"],
        ),
        (
            vec!["--jwt-public-key", &missing],
            vec!["--jwt-public-key", &missing, "cannot read"],
        ),
        (
            vec!["--jwt-public-key", &garbage],
            vec![&garbage, "not a PEM file"],
        ),
        (
            vec!["--jwt-public-key", &private],
            vec![&private, "public half"],
        ),
        (vec!["--jwt-public-key", &small], vec![&small, "1024 bits"]),
        (
            vec!["--jwt-secret", SECRET, "--jwt-public-key", &public],
            vec!["--jwt-secret", "--jwt-public-key"],
        ),
        (
            vec!["--public-topics", "sessions/alice"],
            vec!["--public-topics", "topics only"],
        ),
        (
            vec!["--allow-anonymous", "--jwt-secret", SECRET],
            vec!["--allow-anonymous", "--jwt-secret"],
        ),
        (
            vec!["token", "--publish", "topic/x", "--jwt-secret", SECRET],
            vec!["--publish", "not a channel kind"],
        ),
        (
            vec![
                "token",
                "--subscribe",
                "*",
                "--ttl",
                "forever",
                "--jwt-secret",
                SECRET,
            ],
            vec!["--ttl", "forever"],
        ),
        (
            vec![
                "token",
                "--subscribe",
                "*",
                "--ttl",
                "400d",
                "--jwt-secret",
                SECRET,
            ],
            vec!["--ttl", "366d"],
        ),
        (
            vec!["token", "--subscribe", "*"],
            vec!["no key", "--jwt-secret", "--jwt-private-key"],
        ),
        (vec!["token", "--jwt-secret", SECRET], vec!["grant nothing"]),
        (
            vec!["token", "--subscribe", "*", "--jwt-private-key", &sec1],
            vec![&sec1, "openssl pkcs8"],
        ),
        (
            vec!["token", "--subscribe", "*", "--jwt-private-key", &public],
            vec![&public, "private key"],
        ),
    ];
    for (args, says) in cases {
        let mut command = sselab(&args);
        if args.first() != Some(&"token") {
            command.args(LOOPBACK);
        }
        let output = run(&mut command);
        assert!(!output.status.success(), "{args:?}");
        let stderr = stderr_of(&output);
        for said in says {
            assert!(stderr.contains(said), "{args:?}: {said:?} in {stderr}");
        }
    }
}

/// `sselab token … ` with the given key flags: the token it printed.
fn mint(args: &[&str]) -> String {
    let output = run(&mut sselab(&[&["token"], args].concat()));
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
    stdout.trim().to_string()
}

#[tokio::test]
async fn sselab_token_round_trips_through_a_server() {
    let public = fixture("rs256-public.pem").display().to_string();
    let private = fixture("rs256-private.pem").display().to_string();
    let hs256 = ["--jwt-secret", SECRET];
    let rs256 = ["--jwt-private-key", private.as_str()];
    let grants = [
        "--publish",
        "topics/*",
        "--subscribe",
        "topics/news",
        "--ttl",
        "10m",
    ];
    for (server_key, token_key) in [
        (vec!["--jwt-secret", SECRET], hs256),
        (vec!["--jwt-public-key", &public], rs256),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = sselab(&LOOPBACK);
        command.args(&server_key);
        let server = Running::start(&mut command, dir.path());
        let token = mint(&[&grants[..], &token_key[..]].concat());
        let addr = server.addr("http");
        let client = Client::h1(plain(addr).await, format!("http://{addr}")).await;
        let authorization = bearer(&token);
        let posted =
            crate::util::auth::post_as(&client, Some(&token), "/api/topics/news/events").await;
        assert_eq!(posted.status(), StatusCode::ACCEPTED);
        crate::util::text(posted).await;
        let admin = client
            .get_with("/api/sessions", &[("authorization", &authorization)])
            .await;
        assert_eq!(admin.status(), StatusCode::FORBIDDEN);
        crate::util::text(admin).await;
        let client = Client::h1(plain(addr).await, format!("http://{addr}")).await;
        let mut events = Events::new(
            client
                .get(&format!(
                    "/sse/topics/news?lastEventId=0&access_token={token}"
                ))
                .await,
        );
        assert_eq!(events.status, StatusCode::OK);
        events.connected().await;
        assert_eq!(events.next().await.expect("the posted event").data, "hello");
        server.stop();
    }
    // The HS256 token's lifetime is the --ttl given.
    let token = mint(&[&grants[..], &hs256[..]].concat());
    let claims = Verifier::new(VerifyKey::hs256(SECRET).expect("key"))
        .verify(&token)
        .expect("valid");
    assert!(
        (590..=600).contains(&(claims.exp - now())),
        "exp {} now {}",
        claims.exp,
        now()
    );
}

// Multi-threaded: the clients' connection tasks must run, and close, while the test's
// thread waits for the server to exit; on one thread the server waited out its grace for them.
#[tokio::test(flavor = "multi_thread")]
async fn query_tokens_never_reach_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = sselab(&[
        "--http",
        "127.0.0.1:0",
        "--https",
        "127.0.0.1:0",
        "--https-h1",
        "off",
        "-vv",
    ]);
    command.args([
        "--cert-dir",
        &dir.path().join("certs").display().to_string(),
    ]);
    command.env("SSELAB_JWT_SECRET", SECRET);
    let server = Running::start(&mut command, dir.path());
    let valid = crate::util::auth::token(&[], &["*"], false);
    let marker = "not-a-jwt-but-secret-all-the-same";
    let (http, https) = (server.addr("http"), server.addr("https"));
    let cert = dir.path().join("certs/cert.pem");
    // What each request must get, with the valid token and with the marker: the demo is open
    // to all (no token is checked), a subscription and an order need a valid one.
    for (token, statuses) in [
        (
            valid.as_str(),
            [StatusCode::OK, StatusCode::OK, StatusCode::NOT_FOUND],
        ),
        (
            marker,
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::OK,
                StatusCode::UNAUTHORIZED,
            ],
        ),
    ] {
        let paths = [
            format!("/sse/topics/news?access_token={token}"),
            format!("/sse/demo?id=x&access_token={token}&retry=100"),
            format!("/api/orders/nope?access_token={token}"),
        ];
        for (path, status) in paths.iter().zip(statuses) {
            // A connection per request: a stream dropped unread takes its HTTP/1.1 one along.
            let h1 = Client::h1(plain(http).await, format!("http://{http}")).await;
            let tls = crate::util::tls(https, &cert, &[b"h2"]).await;
            let h2 = Client::h2(tls, format!("https://localhost:{}", https.port())).await;
            for client in [h1, h2] {
                assert_eq!(client.get(path).await.status(), status, "{path}");
            }
        }
    }
    let log = server.stop();
    assert!(
        log.contains("/sse/topics/news"),
        "requests are logged with their URI:\n{log}"
    );
    assert!(
        log.contains("/sse/demo?id=x&retry=100"),
        "the rest of the query is kept"
    );
    assert!(!log.contains(&valid), "the valid token leaked into the log");
    assert!(
        !log.contains(marker),
        "the invalid token leaked into the log"
    );
}
