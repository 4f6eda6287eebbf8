//! Attacks on connections rather than on HTTP/2: slowloris over plain and TLS HTTP/1.1 (and
//! TLS handshakes that never finish), cut by `--header-read-timeout`; `--max-connections`
//! and `--max-connections-per-ip`, and how a refused connection is answered; and
//! `sselab bench attack` in a small mode. The HTTP/2 attacks are in tests/abuse.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::util::{PATIENCE, TestServer, Via, abuse, bench};
use http::StatusCode;
use sselab::server::ListenerKind;
use sselab::server::admission::Refusal;
use sselab::server::refusal::ConnAnswer;
use sselab::sse::parser::Parser;
use sselab::sse::{RefusalReason, refusal_frame};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_connections_are_cut_at_the_header_deadline_and_a_normal_client_is_served() {
    const EACH: usize = 100;
    // Room to open 300 slow connections and serve three normal clients before the first is
    // cut: with 5 s, a clean CI run (the browsers beside it) once saw 5 of them cut first.
    let deadline = Duration::from_secs(10);
    let server = TestServer::start(&["--header-read-timeout", "10", "--tick-ms", "50"]).await;
    let stop = CancellationToken::new();
    let every = Duration::from_millis(200);
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..EACH {
        // Plain HTTP/1.1 trickling its headers.
        let since = Instant::now();
        let tcp = crate::util::plain(server.http).await;
        slow.spawn(abuse::trickle(tcp, since, every, stop.clone()));
        // TLS done, then the headers trickled.
        let since = Instant::now();
        let tls = abuse::tls_h1(server.https_h1, &server.cert_pem).await;
        slow.spawn(abuse::trickle(tls, since, every, stop.clone()));
        // A TLS handshake that never starts.
        let since = Instant::now();
        let tcp = crate::util::plain(server.https).await;
        slow.spawn(abuse::stall(tcp, since, stop.clone()));
    }
    let held = 3 * EACH as u64;
    let open = || server.state.connections.open().iter().sum::<u64>();
    crate::util::eventually("every slow connection accepted", || open() >= held).await;

    // A normal client over each transport is served while they are all held.
    for via in [Via::H1, Via::H1Tls, Via::H2Tls] {
        let client = server.client(via).await;
        let (mut events, _) = client.subscribe("/sse/hello?timeout=0", None).await;
        assert!(events.next().await.is_some(), "{via:?} ticks");
    }
    assert!(
        open() >= held,
        "the slow connections were still open: {}",
        open()
    );

    // Then the deadline cuts every one of them, none before it.
    let mut lifetimes = Vec::new();
    while let Some(done) = tokio::time::timeout(PATIENCE, slow.join_next())
        .await
        .expect("every slow connection closed in time")
    {
        lifetimes.push(done.expect("task").expect("closed by the server"));
    }
    assert_eq!(lifetimes.len(), 3 * EACH);
    assert!(
        lifetimes.iter().all(|&lived| lived >= deadline),
        "{lifetimes:?}"
    );
    // The server counts a connection out when its task ends, just after the socket closed.
    crate::util::eventually("the server counted them closed without a request", || {
        server.state.connections.closed_without_request() >= held
    })
    .await;
}

/// What a refused plain connection is answered after it sent `request`, up to the close.
async fn refused_answer(http: SocketAddr, request: &str) -> String {
    let mut refused = crate::util::plain(http).await;
    refused
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    abuse::read_to_close(refused).await
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_connections_a_plain_connection_is_answered_by_its_accept_and_tls_is_closed() {
    let mut server =
        TestServer::start(&["--max-connections", "4", "--metrics", "127.0.0.1:0"]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(crate::util::plain(server.http).await);
    }
    let open = |server: &TestServer| server.state.connections.open().iter().sum::<u64>();
    crate::util::eventually("four connections held", || open(&server) == 4).await;

    // A connection that sends nothing is closed once the head wait is over; it waits beside
    // the rest.
    let silent = crate::util::plain(server.http).await;
    let silent = tokio::spawn(abuse::read_to_close(silent));

    // An EventSource (cross-origin here): 200 with one `refused` frame whose retry: is the
    // 5 s Retry-After spread by the default --retry-jitter (0.2), no id:, then the end.
    let answer = refused_answer(
        server.http,
        "GET /sse/hello HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\
         Origin: http://page.example\r\n\r\n",
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let head = head.to_ascii_lowercase();
    for line in [
        "content-type: text/event-stream",
        "x-sselab-refused: max_connections",
        "access-control-allow-origin: *",
    ] {
        assert!(
            head.contains(&format!("\r\n{line}\r\n")),
            "{line}: {answer}"
        );
    }
    let mut parser = Parser::new();
    let events = parser.feed(body.as_bytes());
    assert_eq!(events.len(), 1, "{body}");
    let refused = &events[0];
    assert_eq!(
        (refused.event.as_str(), refused.id.as_str()),
        ("refused", "")
    );
    assert!(!body.contains("\nid:"), "{body}");
    let retry = refused.retry.expect("a retry: field");
    assert!((5000..=6000).contains(&retry), "{body}");
    let data: serde_json::Value = serde_json::from_str(&refused.data).expect("JSON");
    assert_eq!(data["status"], 503);
    assert_eq!(data["reason"], "max_connections");
    assert_eq!(data["retry_ms"], retry);
    let message = data["message"].as_str().expect("a message");
    assert!(message.contains("(--max-connections)"), "{data}");
    // Written by hand below the SSE layer, byte for byte the SSE layer's refusal frame.
    let frame = refusal_frame(RefusalReason::MaxConnections, message, retry);
    assert_eq!(body.as_bytes(), &frame[..]);

    // curl's Accept: a one-line 503 with Retry-After naming the flag, then the close.
    let answer = refused_answer(
        server.http,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\r\nretry-after: 5\r\n"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    assert!(
        body.contains("(--max-connections)") && body.lines().count() == 1,
        "{body}"
    );
    // TLS: closed before any handshake.
    let tls = crate::util::plain(server.https).await;
    assert_eq!(abuse::read_to_close(tls).await, "");
    assert_eq!(silent.await.expect("reader task"), "", "silence is closed");

    // The --metrics listener is not capped, and counts each answer.
    let metrics = server.metrics.expect("--metrics");
    let text = crate::util::text(
        crate::util::Client::h1(
            crate::util::plain(metrics).await,
            format!("http://{metrics}"),
        )
        .await
        .get("/metrics")
        .await,
    )
    .await;
    for (listener, answer) in [
        ("http", "stream"),
        ("http", "status"),
        ("http", "closed"),
        ("https", "closed"),
    ] {
        let line = format!(
            r#"sselab_connections_refused_total{{answer="{answer}",listener="{listener}",reason="max_connections"}} 1"#
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }

    // One closes, and a place is free again.
    held.pop();
    crate::util::eventually("three held", || open(&server) == 3).await;
    let client = server.client(Via::H1).await;
    assert_eq!(client.get("/healthz").await.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_connections_per_ip_that_address_is_refused_and_others_are_not() {
    // With --refusals status, an EventSource too gets the 503.
    let server =
        TestServer::start(&["--max-connections-per-ip", "2", "--refusals", "status"]).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(abuse::connect_from("127.0.0.1", server.http).await);
    }
    // Both admitted before the third connects: each accept is checked on a task of its own,
    // in no set order.
    let http = ListenerKind::Http.index();
    crate::util::eventually("two held", || server.state.connections.open()[http] == 2).await;

    assert_eq!(server.state.connections.admission().peers(), 1);
    let mut third = abuse::connect_from("127.0.0.1", server.http).await;
    third
        .write_all(b"GET /sse/hello HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .expect("the request is sent");
    let answer = abuse::read_to_close(third).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 ") && answer.contains("(--max-connections-per-ip)"),
        "{answer}"
    );

    // Another address of this machine is another peer.
    let other = abuse::connect_from("127.0.0.2", server.http).await;
    let client = crate::util::Client::h1(other, format!("http://{}", server.http)).await;
    assert_eq!(client.get("/healthz").await.status(), StatusCode::OK);
    let refused: Vec<_> = server
        .state
        .connections
        .admission()
        .refused()
        .into_iter()
        .filter(|(_, _, _, n)| *n > 0)
        .collect();
    assert_eq!(
        refused,
        vec![(
            ListenerKind::Http,
            Refusal::MaxConnectionsPerIp,
            ConnAnswer::Status,
            1
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_attack_rapid_reset_reports_each_connection_told_to_go_away() {
    let server = TestServer::start(&[]).await;
    let cacert = server.cert_pem.display().to_string();
    let url = format!(
        "https://127.0.0.1:{}/sse/hello?timeout=0",
        server.https.port()
    );
    let metrics = format!("http://{}/metrics", server.http);
    let report = sselab::bench::attack::run(bench::attack(&[
        "rapid-reset",
        "--url",
        &url,
        "--cacert",
        &cacert,
        "--attack-connections",
        "2",
        "--before",
        "0.5",
        "--duration",
        "1",
        "--server-metrics",
        &metrics,
    ]))
    .await
    .expect("the attack runs");
    let text = report.text();
    let reset = report.rapid_reset.as_ref().expect("rapid-reset report");
    let ended = &reset.endings;
    let told = ended.goaways.get("ENHANCE_YOUR_CALM").copied().unwrap_or(0);
    assert!(told >= 1, "{text}");
    assert_eq!(told + ended.stopped, ended.connections, "{text}");
    // The server took at most one write's worth of streams before saying stop.
    let per_write = u64::from(sselab::bench::attack::RESETS_PER_WRITE);
    assert!(reset.streams_before_goaway.max <= per_write, "{text}");
    for phase in [&report.control_before, &report.control_during] {
        assert!(phase.first_event.samples > 0 && phase.failed == 0, "{text}");
    }
    let server_side = report.server.as_ref().expect("--server-metrics");
    assert!(server_side.rss_peak_bytes.is_some() && server_side.cpu_during_percent.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_attack_slowloris_reports_the_connections_cut_at_the_deadline() {
    let server = TestServer::start(&["--header-read-timeout", "1"]).await;
    let url = format!("http://{}/sse/hello?timeout=0", server.http);
    let report = sselab::bench::attack::run(bench::attack(&[
        "slowloris",
        "--url",
        &url,
        "--attack-connections",
        "50",
        "--before",
        "0.5",
        "--duration",
        "2.5",
    ]))
    .await
    .expect("the attack runs");
    let text = report.text();
    let slow = report.slowloris.as_ref().expect("slowloris report");
    assert!(slow.cut_by_server >= 50, "{text}");
    assert!(
        slow.lifetime.p50_ms >= 1000.0,
        "cut at the deadline, not before: {text}"
    );
    assert_eq!(slow.refused, 0, "{text}");
    assert!(report.control_during.first_event.samples > 0, "{text}");
    assert_eq!(report.control_during.failed, 0, "{text}");
}

/// An attack only ever runs on this machine: it has no `--allow-remote` (clap refuses it), and
/// a target outside loopback is refused.
#[tokio::test]
async fn bench_attack_refuses_a_target_outside_loopback_and_has_no_allow_remote() {
    let remote = "http://10.1.2.3:8080/sse/hello";
    let flag = bench::parse(&["attack", "slowloris", "--url", remote, "--allow-remote"])
        .expect_err("no --allow-remote for attacks");
    assert_eq!(
        flag.kind(),
        clap::error::ErrorKind::UnknownArgument,
        "{flag}"
    );
    let refused = sselab::bench::attack::run(bench::attack(&["slowloris", "--url", remote]))
        .await
        .expect_err("refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("outside loopback") && message.contains("only runs against this machine"),
        "{message}"
    );
}

/// Every server figure an attack run could not read is named with why, not left as n/a:
/// here the metrics endpoint answers the first reading only.
#[tokio::test(flavor = "multi_thread")]
async fn bench_attack_names_each_server_figure_it_could_not_read() {
    let server = TestServer::start(&[]).await;
    let page = "process_resident_memory_bytes 4096\nprocess_cpu_seconds_total 1\n";
    let metrics = bench::metrics_that_answer_once(page).await;
    let url = format!("http://{}/sse/hello?timeout=0", server.http);
    let report = sselab::bench::attack::run(bench::attack(&[
        "slowloris",
        "--url",
        &url,
        "--attack-connections",
        "2",
        "--before",
        "0.3",
        "--duration",
        "0.5",
        "--server-metrics",
        &metrics,
    ]))
    .await
    .expect("the attack runs");
    let text = report.text();
    let server_side = report.server.as_ref().expect("--server-metrics");
    let missing: Vec<&str> = server_side.not_measured.iter().map(|(f, _)| f).collect();
    assert_eq!(
        missing,
        [
            "CPU before",
            "CPU during",
            "RSS after",
            "RSS at peak",
            "RSS before",
            "closed without request"
        ],
        "{text}"
    );
    for (figure, why) in server_side.not_measured.iter() {
        assert!(why.contains(&metrics), "{figure}: {why}");
        assert!(text.contains(&format!("{figure}: {why}")), "{text}");
    }
    assert_eq!(server_side.rss_peak_bytes, None, "{text}");
}
