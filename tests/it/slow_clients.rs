//! A client that connects and never finishes its request headers (or its TLS handshake) is
//! cut after --header-read-timeout instead of holding a connection forever.

use std::time::{Duration, Instant};

use crate::util::{PATIENCE, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Write `prefix`, then wait for the server to close; gives how long that took.
async fn cut_after(mut stream: TcpStream, prefix: &[u8]) -> Duration {
    let started = Instant::now();
    stream.write_all(prefix).await.expect("write");
    let mut buf = Vec::new();
    // EOF or a reset both mean the server gave up on us.
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut buf))
        .await
        .expect("the server closes a stalled connection");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_headers_silent_clients_and_stalled_tls_are_cut() {
    let server = TestServer::start(&["--header-read-timeout", "1"]).await;
    let cases: [(&str, std::net::SocketAddr, &[u8]); 4] = [
        (
            "half a request line",
            server.http,
            b"GET /sse/hello HTTP/1.1\r\nHost: x\r\n",
        ),
        ("nothing at all", server.http, b""),
        ("half an HTTP/2 preface", server.http, b"PRI * HTTP/2.0\r\n"),
        ("no TLS handshake", server.https, b""),
    ];
    let mut checks = Vec::new();
    for (what, addr, prefix) in cases {
        checks.push(tokio::spawn(async move {
            let took = cut_after(crate::util::plain(addr).await, prefix).await;
            (what, took)
        }));
    }
    for check in checks {
        let (what, took) = check.await.expect("task");
        assert!(
            took >= Duration::from_millis(800),
            "{what}: cut too early ({took:?})"
        );
        assert!(took < Duration::from_secs(10), "{what}: cut after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_client_is_not_affected_by_the_header_timeout() {
    let server = TestServer::start(&["--header-read-timeout", "1", "--tick-ms", "200"]).await;
    let client = server.client(crate::util::Via::H1).await;
    let mut events = crate::util::Events::new(client.get("/sse/hello?timeout=0").await);
    // Streams last far longer than the header timeout.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        assert!(events.next().await.is_some(), "the stream keeps going");
    }
}
