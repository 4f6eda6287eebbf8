//! `sselab bench` in a small mode against a real server on port 0, and /metrics reflecting
//! what the streams did. The reports must add up: nothing lost, nothing counted twice.

use std::time::{Duration, Instant};

use crate::util::bench::load as load_args;
use crate::util::{Events, TestServer, Via};
use sselab::bench::{Report, StormReport};

async fn bench(args: &[&str]) -> Report {
    sselab::bench::load::run(load_args(args))
        .await
        .expect("bench runs")
}

fn assert_fan_out_adds_up(report: &Report, streams: u64) {
    assert_eq!(report.established, streams, "{}", report.text());
    assert_eq!(report.failed, 0, "{}", report.text());
    let publish = report.publish.as_ref().expect("fan-out mode");
    // About 40 in 2 s at 20/s, each awaiting its answer: a busy machine answers slower, and
    // the claim is that every published event reaches every stream, however many there were.
    assert!(
        publish.sent >= 5,
        "at least 5 publishes in 2 s at 20/s: {}",
        report.text()
    );
    assert_eq!(publish.failed, 0);
    assert_eq!(
        publish.answer.samples, publish.sent,
        "every answered publish is timed"
    );
    assert!(publish.answer.p50_ms > 0.0 && publish.answer.max_ms >= publish.answer.p50_ms);
    assert_eq!(report.lost, 0, "{}", report.text());
    assert_eq!(report.duplicated, 0, "{}", report.text());
    assert_eq!(
        report.events_received,
        publish.sent * streams,
        "every stream got every event"
    );
    assert_eq!(report.latency.samples, report.events_received);
    assert_eq!(report.establish.samples, streams);
    assert!(report.latency.p50_ms > 0.0 && report.latency.max_ms >= report.latency.p99_ms);
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_over_http2_and_http1_loses_nothing_and_counts_add_up() {
    let server = TestServer::start(&[]).await;
    let cacert = server.cert_pem.display().to_string();
    let https = format!("https://127.0.0.1:{}", server.https.port());
    let http = format!("http://127.0.0.1:{}", server.http.port());

    let h2 = bench(&[
        "--url",
        &format!("{https}/sse/topics/h2"),
        "--streams",
        "200",
        "--connections",
        "2",
        "--cacert",
        &cacert,
        "--duration",
        "2",
        "--rate",
        "20",
        "--publish-url",
        &format!("{http}/api/topics/h2/events"),
        "--server-metrics",
        &format!("{http}/metrics"),
    ])
    .await;
    assert_fan_out_adds_up(&h2, 200);
    assert_eq!((h2.proto.as_str(), h2.connections), ("h2", 2));
    assert!(
        h2.server_rss_per_stream_bytes.is_some(),
        "RSS read from /metrics: {}",
        h2.text()
    );
    assert!(h2.server_not_measured.is_empty(), "{}", h2.text());

    let h1 = bench(&[
        "--url",
        &format!("{http}/sse/topics/h1"),
        "--streams",
        "200",
        "--proto",
        "h1",
        "--duration",
        "2",
        "--rate",
        "20",
        "--publish-url",
        &format!("{http}/api/topics/h1/events"),
    ])
    .await;
    assert_fan_out_adds_up(&h1, 200);
    assert_eq!((h1.proto.as_str(), h1.connections), ("h1", 200));
}

/// HTTP/3 measured by the same code: 100 streams on each QUIC connection, the server's default
/// stream limit, all answered; a plain http URL or an untrusted certificate said plainly.
#[tokio::test(flavor = "multi_thread")]
async fn fan_out_over_http3_adds_up_like_http2() {
    let server = TestServer::start(&[]).await;
    let cacert = server.cert_pem.display().to_string();
    let http = format!("http://127.0.0.1:{}", server.http.port());
    let h3_url = format!("https://127.0.0.1:{}/sse/topics/h3", server.h3.port());
    let mut flags = vec!["--url", &h3_url, "--proto", "h3", "--streams", "200"];
    flags.extend(["--connections", "2", "--cacert", &cacert, "--duration", "2"]);
    let publish = format!("{http}/api/topics/h3/events");
    let metrics = format!("{http}/metrics");
    flags.extend([
        "--rate",
        "20",
        "--publish-url",
        &publish,
        "--server-metrics",
        &metrics,
    ]);
    let h3 = bench(&flags).await;
    assert_fan_out_adds_up(&h3, 200);
    assert_eq!((h3.proto.as_str(), h3.connections), ("h3", 2));
    assert_eq!(h3.first_event.samples, 200, "{}", h3.text());

    let plain = sselab::bench::load::run(load_args(&["--url", &http, "--proto", "h3"])).await;
    let message = format!("{:#}", plain.expect_err("h3 needs https"));
    assert!(message.contains("use an https:// URL"), "{message}");
    let (_other_dir, other_cert) = other_cert();
    let untrusted = bench(&[
        "--url",
        &h3_url,
        "--proto",
        "h3",
        "--streams",
        "2",
        "--duration",
        "1",
        "--cacert",
        &other_cert,
    ])
    .await;
    assert_eq!(
        (untrusted.established, untrusted.failed),
        (0, 2),
        "{}",
        untrusted.text()
    );
    assert!(
        untrusted.failures.keys().all(|k| k.starts_with("quic: ")),
        "{}",
        untrusted.text()
    );
}

/// `--topics-per-stream 4`: every stream follows the same 4 topics on one `/sse/topics`
/// stream, over HTTP/2 and HTTP/1.1 at once. The publishes go to each topic in turn, and every
/// stream gets every one of them, counted by its stamp: an event's type is `topic:NAME` and
/// its `id:` a cursor, not a number.
#[tokio::test(flavor = "multi_thread")]
async fn many_topics_on_one_stream_get_every_topics_events() {
    let server = TestServer::start(&[]).await;
    let cacert = server.cert_pem.display().to_string();
    let https = format!("https://127.0.0.1:{}", server.https.port());
    let http = format!("http://127.0.0.1:{}", server.http.port());
    let run = |base: &str, proto: &'static str| {
        let url = format!("{base}/sse/topics?topic={proto}-{{k}}");
        let publish = format!("{http}/api/topics/{proto}-{{k}}/events");
        let cacert = cacert.clone();
        async move {
            let mut flags = vec!["--url", &url, "--proto", proto, "--topics-per-stream", "4"];
            flags.extend(["--streams", "40", "--cacert", &cacert, "--duration", "1"]);
            flags.extend(["--rate", "20", "--publish-url", &publish]);
            bench(&flags).await
        }
    };
    let (h2, h1) = tokio::join!(run(&https, "h2"), run(&http, "h1"));
    for (proto, report) in [("h2", h2), ("h1", h1)] {
        assert_fan_out_adds_up(&report, 40);
        assert_eq!(report.topics_per_stream, 4);
        let publish = report.publish.as_ref().expect("fan-out mode");
        assert_eq!(publish.topics, 4, "{}", report.text());
        // The server's own count: each topic got its turn, and nothing else was published.
        let topics = server.state.hub.topics();
        let mine: Vec<_> = topics
            .iter()
            .filter(|t| t.name.starts_with(&format!("{proto}-")))
            .collect();
        assert_eq!(mine.len(), 4, "{topics:?}");
        assert!(mine.iter().all(|t| t.last_event_id >= 1), "{topics:?}");
        let published: u64 = mine.iter().map(|t| t.last_event_id).sum();
        assert_eq!(published, publish.sent, "{topics:?}");
    }

    let one_topic = sselab::bench::load::run(load_args(&[
        "--url",
        &format!("{http}/sse/topics/fan"),
        "--topics-per-stream",
        "4",
    ]))
    .await;
    let message = format!(
        "{:#}",
        one_topic.expect_err("no {k} to write the topics in")
    );
    assert!(
        message.contains("--topics-per-stream 4 needs {k} in --url's query"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_stream_can_be_its_own_session() {
    let server = TestServer::start(&[]).await;
    let url = format!(
        "http://127.0.0.1:{}/sse/sessions/bench-{{n}}",
        server.http.port()
    );
    let report = bench(&[
        "--url",
        &url,
        "--streams",
        "50",
        "--proto",
        "h2c",
        "--connections",
        "5",
        "--duration",
        "1",
    ])
    .await;
    assert_eq!(report.established, 50, "{}", report.text());
    assert_eq!(server.state.hub.session_count(), 50);
    assert!(server.state.hub.session("bench-49").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_targets_are_counted_not_fatal_and_the_run_still_ends() {
    let server = TestServer::start(&[]).await;
    let http = format!("http://127.0.0.1:{}", server.http.port());
    let started = Instant::now();

    let missing = bench(&[
        "--url",
        &format!("{http}/nothing/here"),
        "--streams",
        "5",
        "--duration",
        "1",
    ])
    .await;
    assert_eq!(
        missing.failures.get("HTTP 404"),
        Some(&5),
        "{}",
        missing.text()
    );
    let not_sse = bench(&[
        "--url",
        &format!("{http}/proto"),
        "--streams",
        "3",
        "--duration",
        "1",
    ])
    .await;
    assert_eq!(
        not_sse
            .failures
            .get("not SSE (content-type application/json)"),
        Some(&3)
    );
    let refused = {
        // Bound but never listening: connecting is refused, and the port stays this test's
        // while the bench runs (a port freed and reused could be taken by another test).
        let closed = tokio::net::TcpSocket::new_v4().expect("socket");
        closed
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let port = closed.local_addr().expect("addr").port();
        bench(&[
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--streams",
            "3",
            "--duration",
            "1",
        ])
        .await
    };
    assert_eq!(
        refused.failures.get("connect: connection refused"),
        Some(&3),
        "{}",
        refused.text()
    );
    let (_other_dir, other_cert) = other_cert();
    let tls = bench(&[
        "--url",
        &format!("https://127.0.0.1:{}/sse/hello", server.https.port()),
        "--streams",
        "2",
        "--duration",
        "1",
        "--cacert",
        &other_cert,
    ])
    .await;
    assert!(
        tls.failures.keys().all(|k| k.starts_with("tls: ")),
        "{}",
        tls.text()
    );
    assert_eq!(
        (tls.established, tls.failed),
        (0, 2),
        "each stream counted once"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "every run is bounded"
    );

    let remote = sselab::bench::load::run(load_args(&[
        "--url",
        "http://192.0.2.1/sse",
        "--duration",
        "1",
    ]))
    .await;
    let message = format!("{:#}", remote.expect_err("refused without --allow-remote"));
    assert!(message.contains("loopback"), "{message}");
    let no_trust = sselab::bench::load::run(load_args(&[
        "--url",
        "https://127.0.0.1:1/",
        "--duration",
        "1",
    ]))
    .await;
    assert!(format!("{:#}", no_trust.expect_err("https needs trust")).contains("--cacert"));
}

/// A certificate the server does not use, so the handshake must fail; it lives as long as
/// the returned directory.
fn other_cert() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let material = sselab::server::certs::generate(dir.path(), &["localhost".to_string()])
        .expect("other cert");
    (dir, material.cert_path.display().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_streams_opened_and_closed_by_protocol() {
    let server = TestServer::start(&["--metrics", "127.0.0.1:0"]).await;
    let h1 = server.client(Via::H1).await;
    let h2 = server.client(Via::H2Tls).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let client = server.client(Via::H1).await;
        streams.push(Events::new(client.get("/sse/hello").await));
    }
    for _ in 0..2 {
        streams.push(Events::new(h2.get("/sse/hello").await));
    }
    let text = crate::util::text(h1.get("/metrics").await).await;
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_open{listener="http",protocol="HTTP/1.1"}"#
        ),
        3
    );
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_open{listener="https",protocol="HTTP/2"}"#
        ),
        2
    );
    assert_eq!(
        crate::util::metric_sample(&text, r#"sselab_connections_open{listener="https"}"#),
        1
    );
    assert!(crate::util::metric_sample(&text, "process_resident_memory_bytes") > 1 << 20);

    drop(streams);
    crate::util::eventually("streams counted out", || {
        server.state.streams.open_streams().total() == 0
    })
    .await;
    let missing = h1.get("/no/such/page").await;
    assert_eq!(missing.status(), http::StatusCode::NOT_FOUND);
    let _ = crate::util::text(missing).await;

    // The --metrics listener serves the same counters, and nothing else.
    let metrics_addr = server.metrics.expect("the --metrics listener is on");
    let metrics = crate::util::Client::h1(
        crate::util::plain(metrics_addr).await,
        format!("http://{metrics_addr}"),
    )
    .await;
    let scraped = metrics.get("/metrics").await;
    assert_eq!(scraped.status(), http::StatusCode::OK);
    let text = crate::util::text(scraped).await;
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_opened_total{listener="http",protocol="HTTP/1.1"}"#
        ),
        3
    );
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_opened_total{listener="https",protocol="HTTP/2"}"#
        ),
        2
    );
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_closed_total{reason="client-gone"}"#
        ),
        5
    );
    assert_eq!(
        crate::util::metric_sample(
            &text,
            r#"sselab_streams_open{listener="http",protocol="HTTP/1.1"}"#
        ),
        0
    );
    assert_eq!(
        crate::util::metric_sample(&text, r#"sselab_http_responses_total{status="404"}"#),
        1
    );
    assert!(
        crate::util::metric_sample(&text, "sselab_events_sent_total") >= 5,
        "at least each stream's first frame"
    );
    let not_here = metrics.get("/sse/hello").await;
    assert_eq!(
        not_here.status(),
        http::StatusCode::NOT_FOUND,
        "the --metrics listener serves only /metrics"
    );
}

/// A figure the server's metrics could not give is reported as not measured, naming the
/// reading and why, not left out: here the endpoint answers the first reading only.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_metrics_reading_is_reported_as_not_measured_with_why() {
    let server = TestServer::start(&[]).await;
    let page = "process_resident_memory_bytes 4096\nprocess_cpu_seconds_total 1\n";
    let metrics = crate::util::bench::metrics_that_answer_once(page).await;
    let url = format!("http://{}/sse/hello?timeout=0", server.http);
    let report = bench(&[
        "--url",
        &url,
        "--streams",
        "2",
        "--duration",
        "0.5",
        "--server-metrics",
        &metrics,
    ])
    .await;
    let text = report.text();
    assert_eq!(report.established, 2, "{text}");
    assert_eq!(report.server_rss_before_bytes, Some(4096), "{text}");
    assert_eq!(report.server_rss_after_bytes, None, "{text}");
    assert_eq!(report.server_cpu_seconds, None, "{text}");
    let missing: Vec<(&str, &str)> = report.server_not_measured.iter().collect();
    assert_eq!(missing.len(), 2, "{text}");
    for ((figure, why), moment) in missing
        .iter()
        .zip(["after the run", "with the streams open"])
    {
        assert!(
            why.contains(moment) && why.contains(&metrics),
            "{figure}: {why}"
        );
        let shown = format!("{figure:<22} not measured: {why}");
        assert!(text.contains(&shown), "{shown}\n{text}");
    }
}

/// `sselab bench storm` against this server: `clients` EventSource-like clients for 3.2 s at
/// the lab's cap of 2 (`?slots=2`: refused with a 2 s Retry-After where a full
/// `--max-streams` says 5 s, so the run is 3.2 s, not 6). Streams last 1 s; their own
/// `retry:` (4 s) brings the two that got in back only after the run, so every refusal is a
/// stormer's.
async fn storm(server: &TestServer, proto: &str, clients: usize) -> StormReport {
    let url = format!(
        "http://127.0.0.1:{}/sse/hello?timeout=1&retry=4000&slots=2&group=storm",
        server.http.port()
    );
    let args = crate::util::bench::storm(&[
        "--url",
        &url,
        "--streams",
        &clients.to_string(),
        "--proto",
        proto,
        "--connections",
        "2",
        "--duration",
        "3.2",
    ]);
    sselab::bench::storm::run(args).await.expect("storm runs")
}

/// What the server counted as refused for the lab's cap, answered as a stream.
async fn refusal_streams_counted(server: &TestServer) -> u64 {
    let metrics = crate::util::text(server.client(Via::H1).await.get("/metrics").await).await;
    crate::util::metric_sample(
        &metrics,
        r#"sselab_refusals_total{answer="stream",reason="lab_slots"}"#,
    )
}

/// Issue 23's storm: refused EventSources come back after the `retry:` their refusal told,
/// spread over [Retry-After, Retry-After × (1 + jitter)] — or, without jitter, all told the
/// same. Beside it, `bench load` and `bench reconnect` count a refusal stream as refused,
/// not as an open stream. Every run here goes at once, so the test lasts one storm.
#[tokio::test(flavor = "multi_thread")]
async fn refused_clients_come_back_spread_over_the_jitter_window_and_every_mode_counts_refusals() {
    let spread_server = TestServer::start(&["--retry-jitter", "0.25"]).await;
    let at_once_server = TestServer::start(&["--retry-jitter", "0"]).await;
    let http = format!("http://127.0.0.1:{}", spread_server.http.port());
    let load = sselab::bench::load::run(load_args(&[
        "--url",
        &format!("{http}/sse/hello?slots=1&group=load"),
        "--streams",
        "3",
        "--duration",
        "0.5",
    ]));
    let reconnect = sselab::bench::reconnect::run(crate::util::bench::reconnect(&[
        "--url",
        &format!("{http}/sse/hello?timeout=1&retry=200&slots=1&group=reconnect"),
        "--streams",
        "2",
        "--duration",
        "10",
    ]));
    let (spread, at_once, load, reconnect) = tokio::join!(
        storm(&spread_server, "h1", 12),
        storm(&at_once_server, "h2c", 12),
        load,
        reconnect
    );

    for (report, proto) in [(&spread, "h1"), (&at_once, "h2c")] {
        let text = report.text();
        assert_eq!(report.proto, proto);
        // 12 at once at a cap of 2: 10 refused, and each came back after its first refusal
        // (told at most 2.5 s, in a 3.2 s run), none sooner than told, none overdue.
        assert_eq!(
            (report.refused_clients, report.clients_back),
            (10, 10),
            "{text}"
        );
        assert_eq!((report.returned_early, report.overdue), (0, 0), "{text}");
        assert_eq!(report.refusals_with_id, 0, "{text}");
        assert_eq!(report.refusals.get("lab_slots"), Some(&report.refused));
        assert!(
            report.returned >= 10 && report.streams_opened >= 2,
            "{text}"
        );
        assert!(report.failures.is_empty(), "{text}");
        assert!(report.returned_after.min_ms >= report.retry_told.min_ms);
    }
    let load = load.expect("load runs");
    let reconnect = reconnect.expect("reconnect runs");
    // The bench counted what the server answered: every refusal it read, and at most the
    // attempts the run stopped before reading (on the first server, beside the refusals
    // `load` and `reconnect` met, asserted below).
    let others = load.refused + 1;
    for (report, server, others) in [
        (&spread, &spread_server, others),
        (&at_once, &at_once_server, 0),
    ] {
        let counted = refusal_streams_counted(server).await - others;
        assert!(
            (report.refused..=report.refused + report.unanswered_at_end).contains(&counted),
            "server counted {counted}: {}",
            report.text()
        );
    }

    // With --retry-jitter 0.25 each refusal told 2000–2500 ms, and the returns fall in more
    // than one 100 ms bucket (10 uniform draws over 5 buckets all in one: p ≈ 5e-7).
    let told = spread.retry_told;
    assert!(
        told.min_ms >= 2000.0 && told.max_ms <= 2500.0,
        "{}",
        spread.text()
    );
    let filled = spread.after_refusal.iter().filter(|b| b.count > 0).count();
    assert!(filled > 1, "{}", spread.text());
    // Without it, every refusal told exactly the Retry-After.
    let told = at_once.retry_told;
    assert_eq!(
        (told.min_ms, told.max_ms),
        (2000.0, 2000.0),
        "{}",
        at_once.text()
    );

    let text = load.text();
    assert_eq!(
        (load.established, load.refused, load.failed),
        (1, 2, 0),
        "{text}"
    );
    assert_eq!(load.refusals.get("lab_slots"), Some(&2), "{text}");
    assert!(text.contains("2 × lab_slots (200 refusal stream"), "{text}");
    let text = reconnect.text();
    assert_eq!(
        (reconnect.established, reconnect.reconnected),
        (1, 1),
        "{text}"
    );
    assert_eq!(
        reconnect
            .failures
            .get("refused for now: lab_slots (200 refusal stream)"),
        Some(&1),
        "{text}"
    );
}
