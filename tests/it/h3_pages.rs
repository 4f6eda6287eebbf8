//! What a person sees knows HTTP/3: a request over real QUIC is reported as such by `/proto`
//! and the start page, and its streams and connections are counted under the `h3` listener
//! and the `HTTP/3` protocol in `/metrics`, `/api/stats` and `/healthz`; `/lab` offers the
//! h3 target with the command that makes Chromium use it. Over the shared client (`Via::H3`),
//! except where the test is about the frames themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::util::{PATIENCE, TestServer, Via, eventually, eventually_async, json, text};
use bytes::{Buf, Bytes};
use http::{Request, StatusCode};
use sselab::client::{self, Trust};
use sselab::server::quic_hint::chromium_command;

/// HTTP/3 frames as h3 0.0.8's client gives them: `recv_data` says `None` for a DATA frame
/// without a byte as at the end of the body. sselab's own client (`Via::H3`) reads past such a
/// frame, so it cannot show the listener sending one; this can.
struct H3 {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    quic: quinn::Connection,
}

type Stream = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

impl H3 {
    /// The shared client's TLS and QUIC configuration, with h3's own client on top.
    async fn connect(server: &TestServer) -> Self {
        let tls = client::tls_config(Trust::Pem(&server.cert_pem), &[b"h3"]).expect("TLS");
        let quic = client::quic_config(Arc::new(tls)).expect("QUIC config");
        let mut endpoint =
            quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("UDP socket");
        endpoint.set_default_client_config(quic);
        let connecting = endpoint.connect(server.h3, "localhost").expect("connect");
        let quic = tokio::time::timeout(PATIENCE, connecting)
            .await
            .expect("QUIC handshake in time")
            .expect("QUIC handshake");
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .expect("HTTP/3 handshake");
        tokio::spawn(async move { driver.wait_idle().await });
        Self { send, quic }
    }

    /// GET `path`; the response head and the stream to read its body from.
    async fn get(&mut self, path: &str) -> (http::Response<()>, Stream) {
        let uri = format!(
            "https://localhost:{}{path}",
            self.quic.remote_address().port()
        );
        let request = Request::get(uri).body(()).expect("request");
        let mut stream = self.send.send_request(request).await.expect("request sent");
        stream.finish().await.expect("request ended");
        let response = tokio::time::timeout(PATIENCE, stream.recv_response())
            .await
            .expect("response in time")
            .expect("response");
        (response, stream)
    }

    /// GET `path` and read the whole body as text.
    async fn text(&mut self, path: &str) -> (StatusCode, String) {
        let (response, mut stream) = self.get(path).await;
        let mut body = Vec::new();
        while let Some(mut chunk) = tokio::time::timeout(PATIENCE, stream.recv_data())
            .await
            .expect("body in time")
            .expect("body")
        {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        (response.status(), String::from_utf8(body).expect("utf-8"))
    }
}

#[tokio::test]
async fn proto_over_http3_says_http3_alpn_h3_on_the_h3_listener() {
    let server = TestServer::start(&[]).await;
    let h3 = server.client(Via::H3).await;
    let response = h3.get("/proto").await;
    assert_eq!(response.status(), StatusCode::OK);
    let proto = json(response).await;
    assert_eq!(proto["http_version"], "HTTP/3");
    assert_eq!(proto["alpn"], "h3");
    assert_eq!(proto["listener"], "h3");
    assert_eq!(proto["tls"], true);
    assert_eq!(proto["requests_on_connection"], 1);
}

#[tokio::test]
async fn an_http3_stream_is_counted_under_h3_and_http3_in_metrics_stats_and_healthz() {
    let server = TestServer::start(&["--tick-ms", "200"]).await;
    let h3 = server.client(Via::H3).await;
    let (_events, connected) = h3.subscribe("/sse/hello?timeout=0", None).await;
    assert_eq!(connected["protocol"], "HTTP/3");
    assert_eq!(connected["listener"], "h3");

    let http = server.client(Via::H1).await;
    let metrics = text(http.get("/metrics").await).await;
    for line in [
        "sselab_streams_open{listener=\"h3\",protocol=\"HTTP/3\"} 1",
        "sselab_streams_opened_total{listener=\"h3\",protocol=\"HTTP/3\"} 1",
        "sselab_connections_open{listener=\"h3\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    let stats = json(http.get("/api/stats").await).await;
    assert_eq!(stats["streams"]["open_by_listener"]["h3"]["HTTP/3"], 1);
    assert_eq!(stats["streams"]["open_by_protocol"]["HTTP/3"], 1);
    assert_eq!(stats["connections"]["open"]["h3"], 1);
    let with_streams = &stats["streams"]["connections_with_streams"][0];
    assert_eq!(with_streams["listener"], "h3");
    assert_eq!(with_streams["protocol"], "HTTP/3");
    let health = json(http.get("/healthz").await).await;
    assert_eq!(health["open_streams"]["http3"], 1);

    // The client leaves: the stream and the connection are counted out.
    h3.close();
    eventually_async("the HTTP/3 stream and connection closed", async || {
        let stats = json(http.get("/api/stats").await).await;
        stats["streams"]["open_by_listener"]["h3"]["HTTP/3"] == 0
            && stats["connections"]["open"]["h3"] == 0
    })
    .await;
}

#[tokio::test]
async fn a_quic_connection_over_the_cap_is_refused_and_counted_under_h3() {
    let server = TestServer::start(&["--max-connections-per-ip", "1"]).await;
    let first = server.client(Via::H3).await;
    assert_eq!(first.get("/proto").await.status(), StatusCode::OK);
    let tls = client::tls_config(Trust::Pem(&server.cert_pem), &[b"h3"]).expect("TLS config");
    let quic = client::quic_config(Arc::new(tls)).expect("QUIC config");
    let second = tokio::time::timeout(
        PATIENCE,
        client::Conn::connect_h3(server.h3, "localhost", quic),
    )
    .await
    .expect("refused in time");
    assert!(second.is_err(), "a second connection from 127.0.0.1");
    // Read on the one connection the cap lets in.
    let metrics = text(first.get("/metrics").await).await;
    let line = "sselab_connections_refused_total{answer=\"closed\",listener=\"h3\",\
                reason=\"max_connections_per_ip\"} 1";
    assert!(
        metrics.lines().any(|l| l == line),
        "no `{line}` in:\n{metrics}"
    );
}

#[tokio::test]
async fn the_start_page_over_http3_names_it_and_says_how_to_make_chromium_use_it() {
    let server = TestServer::start(&[]).await;
    let h3 = server.client(Via::H3).await;
    let response = h3.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(response).await;
    let arrived = opening_tag(&page, "<strong id=\"arrived\"");
    for (name, value) in [
        ("data-protocol", "HTTP/3"),
        ("data-listener", "h3"),
        ("data-alpn", "h3"),
    ] {
        assert_eq!(attribute(arrived, name), Some(value), "{arrived}");
    }
    assert!(
        attribute(arrived, "data-connection").is_some_and(|id| id.parse::<u64>().is_ok()),
        "{arrived}"
    );
    // At the listener's own address, not the name the page was asked for (localhost): QUIC is
    // forced on for that origin only, and localhost may resolve to ::1 first.
    let port = server.h3.port();
    let h3 = opening_tag(&page, "<li data-listener=\"h3\"");
    let url = format!("https://127.0.0.1:{port}/");
    assert_eq!(attribute(h3, "data-url"), Some(url.as_str()), "{h3}");
    assert_eq!(attribute(h3, "data-here"), Some("true"), "this one: {h3}");
    // The page shows the one command the server builds, HTML-escaped.
    let command = chromium_command("127.0.0.1", port, Some(&server.spki)).replace('"', "&quot;");
    let shown = page
        .split("<code id=\"h3-command\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next());
    assert_eq!(shown, Some(command.as_str()), "{page}");
}

/// The opening tag in `page` that starts with `start` (through its `>`).
fn opening_tag<'a>(page: &'a str, start: &str) -> &'a str {
    let at = page
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in:\n{page}"));
    let end = page[at..].find('>').expect("the tag ends");
    &page[at..=at + end]
}

/// The value of the attribute `name` in an opening tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let rest = tag.split(&format!(" {name}=\"")).nth(1)?;
    rest.split('"').next()
}

#[tokio::test]
async fn the_lab_offers_the_h3_target_with_the_chromium_command() {
    let server = TestServer::start(&[]).await;
    let http = server.client(Via::H1).await;
    let page = text(http.get("/lab").await).await;
    let port = server.h3.port();
    let option = opening_tag(&page, "<option value=\"h3\"");
    assert_eq!(
        attribute(option, "data-port"),
        Some(port.to_string().as_str()),
        "{option}"
    );
    let config = page
        .split("<script type=\"application/json\" id=\"config\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the config block");
    let config: serde_json::Value = serde_json::from_str(config).expect("JSON config");
    assert!(
        config["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .any(|t| t["kind"] == "h3"
                && t["port"] == port
                && t["scheme"] == "https"
                && t["host"] == "127.0.0.1"),
        "{config}"
    );
    let command = config["quic_command"].as_str().expect("quic_command");
    assert!(
        command.contains(&format!(
            "--origin-to-force-quic-on={}:{port}",
            server.http.ip()
        )) && command.contains(&server.spki),
        "{command}"
    );
}

#[tokio::test]
async fn the_start_banner_prints_the_chromium_command_for_the_h3_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = sselab::Server::bind(&crate::util::test_args(dir.path(), &[])).expect("binds");
    let port = server
        .addr(sselab::server::ListenerKind::H3)
        .expect("h3 on")
        .port();
    let spki = &server.certificate().expect("certificate").spki_sha256;
    let line = format!(
        "HTTP/3 in Chromium: {}",
        chromium_command("127.0.0.1", port, Some(spki))
    );
    let banner = server.banner();
    assert!(
        banner.lines().any(|l| l == line),
        "no `{line}` in:\n{banner}"
    );
}

/// Read `stream` until `ids` more events have arrived; `None` from h3 (the end of the body,
/// or a zero-length DATA frame, which h3 0.0.8's client reads the same) fails.
async fn read_events(stream: &mut Stream, ids: usize) {
    let mut seen = String::new();
    while seen.matches("\nid: ").count() + usize::from(seen.starts_with("id: ")) < ids {
        let mut chunk = tokio::time::timeout(PATIENCE, stream.recv_data())
            .await
            .expect("next event in time")
            .expect("stream readable")
            .unwrap_or_else(|| panic!("the body ended (or an empty DATA frame) after {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(
            &chunk.copy_to_bytes(chunk.remaining()),
        ));
    }
}

/// The listener watches for STOP_SENDING (a cancelled request) and then probes its idle
/// event streams: a fresh connection must not look like it had one (a grease stream
/// answered with STOP_SENDING did), and a whole answer's data must go before any probe.
#[tokio::test]
async fn a_fresh_connection_streams_without_a_break_and_answers_whole() {
    let server = TestServer::start(&["--tick-ms", "100"]).await;
    let mut h3 = H3::connect(&server).await;
    let (response, mut stream) = h3.get("/sse/hello?timeout=0").await;
    assert_eq!(response.status(), StatusCode::OK);
    // Past the watcher's first looks (every 250 ms).
    read_events(&mut stream, 8).await;
    let (status, proto) = h3.text("/proto").await;
    assert_eq!(status, StatusCode::OK);
    assert!(proto.contains("\"http_version\":\"HTTP/3\""), "{proto:?}");
}

/// A client cancelling one stream (STOP_SENDING, as a browser closing a tab does) is noticed
/// at once, with no event and no keep-alive to write: without the listener's STOP_SENDING
/// watch it would stay open here for ever (`--keepalive 0`). The idle sibling on the same
/// connection gets only the probe, a comment line, and goes on to its next event: its body
/// does not end, not even for h3's own client.
#[tokio::test]
async fn a_cancelled_stream_is_noticed_at_once_and_its_sibling_streams_on() {
    let server = TestServer::start(&["--keepalive", "0"]).await;
    let mut h3 = H3::connect(&server).await;
    let (_, mut cancelled) = h3.get("/sse/topics/quiet-a").await;
    let (_, mut sibling) = h3.get("/sse/topics/quiet-b").await;
    read_events(&mut cancelled, 1).await;
    read_events(&mut sibling, 1).await;
    let streams = server.state.streams.clone();
    eventually("two HTTP/3 streams open", || {
        streams.open_streams().http3 == 2
    })
    .await;

    // Dropped, quinn's receive stream says STOP_SENDING (h3-quinn's own `stop_sending`
    // panics on a stream with a read in flight).
    drop(cancelled);
    eventually("the cancelled stream counted closed", || {
        streams.open_streams().http3 == 1
    })
    .await;

    let publisher = server.client(Via::H1).await;
    let published = publisher
        .post_json(
            "/api/topics/quiet-b/events",
            serde_json::json!({"data": "after"}),
        )
        .await;
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let mut seen = String::new();
    while !seen.contains("data: after") {
        let mut chunk = tokio::time::timeout(PATIENCE, sibling.recv_data())
            .await
            .expect("the sibling's next bytes in time")
            .expect("the sibling is readable")
            .unwrap_or_else(|| panic!("the sibling's body ended after {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(
            &chunk.copy_to_bytes(chunk.remaining()),
        ));
    }
    assert!(seen.starts_with(":\n"), "the probe comes first: {seen:?}");
    assert_eq!(streams.open_streams().http3, 1);
}

/// The HTTP/3 side of slowloris: a QUIC connection that never asks for anything is closed at
/// the header-read timeout, as a TCP one is, and counted as closed without a request. Without
/// the deadline QUIC's keep-alive would hold it (and its place under the caps) for ever.
#[tokio::test]
async fn a_quic_connection_that_asks_for_nothing_is_closed_at_the_header_read_timeout() {
    let server = TestServer::start(&["--header-read-timeout", "1"]).await;
    let silent = H3::connect(&server).await;
    let connections = server.state.connections.clone();
    eventually("the silent connection closed by the server", || {
        silent.quic.close_reason().is_some()
    })
    .await;
    eventually("counted as closed without a request", || {
        connections.closed_without_request() >= 1
    })
    .await;
    // A connection that asks in time is served as before.
    let mut asking = H3::connect(&server).await;
    let (status, _) = asking.text("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
