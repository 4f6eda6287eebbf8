//! HTTP/2 seen at the frame level with the `h2` crate: the SETTINGS the server advertises,
//! and many concurrent SSE streams multiplexed on one connection.

mod util;

use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use http::{Request, StatusCode};
use util::{PATIENCE, TestServer};

type Io = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// An h2 connection over TLS (ALPN h2) whose SETTINGS have been received; returns the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS and the request handle.
async fn connect(server: &TestServer) -> (usize, SendRequest<Bytes>) {
    let io = util::tls(server.https, &server.cert_pem, &[b"h2"]).await;
    let (mut send, mut connection): (_, Connection<Io, Bytes>) =
        h2::client::handshake(io).await.expect("h2 handshake");
    // One round trip guarantees the server's SETTINGS frame (its first frame) was processed.
    let (response, _) = send
        .send_request(get(server, "/healthz"), true)
        .expect("send /healthz");
    let response = tokio::select! {
        response = response => response.expect("/healthz response"),
        result = &mut connection => panic!("connection ended early: {result:?}"),
    };
    assert_eq!(response.status(), StatusCode::OK);
    let advertised = connection.max_concurrent_send_streams();
    tokio::spawn(connection);
    (advertised, send)
}

fn get(server: &TestServer, path: &str) -> Request<()> {
    Request::get(format!("https://localhost:{}{path}", server.https.port()))
        .body(())
        .expect("request")
}

/// Open an SSE stream and wait for its first data frame; keep the body to hold it open.
async fn open_stream(server: &TestServer, send: &mut SendRequest<Bytes>) -> h2::RecvStream {
    let mut send = send.clone().ready().await.expect("ready");
    let (response, _) = send
        .send_request(get(server, "/sse/hello?timeout=0"), true)
        .expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.data().await.expect("a first frame").expect("data");
    assert!(first.starts_with(b"retry: "), "{first:?}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn default_settings_advertise_100_concurrent_streams() {
    let server = TestServer::start(&[]).await;
    let (advertised, _send) = connect(&server).await;
    assert_eq!(advertised, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_holds_150_streams_when_the_flag_allows() {
    let server = TestServer::start(&["--h2-max-streams", "200", "--tick-ms", "500"]).await;
    let (advertised, send) = connect(&server).await;
    assert_eq!(advertised, 200);

    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..150 {
        let send = send.clone();
        let request = get(&server, "/sse/hello?timeout=0");
        opening.spawn(async move {
            let mut send = send.clone().ready().await.expect("ready");
            let (response, _) = send.send_request(request, true).expect("send");
            let response = response.await.expect("response");
            assert_eq!(response.status(), StatusCode::OK);
            let mut body = response.into_body();
            body.data().await.expect("first frame").expect("data");
            body
        });
    }
    let mut bodies = Vec::new();
    while let Some(body) = tokio::time::timeout(PATIENCE, opening.join_next())
        .await
        .expect("streams open in time")
    {
        bodies.push(body.expect("stream task"));
    }
    assert_eq!(bodies.len(), 150);
    util::eventually("150 HTTP/2 streams open on the server", || {
        server.state.streams.open_streams().http2 == 150
    })
    .await;
    // Every one of them is live: each receives its next tick.
    for (index, body) in bodies.iter_mut().enumerate() {
        let tick = tokio::time::timeout(PATIENCE, body.data())
            .await
            .expect("a tick in time")
            .unwrap_or_else(|| {
                panic!(
                    "stream {index} ended; server has {:?} open, end of stream: {}",
                    server.state.streams.open_streams(),
                    body.is_end_stream()
                )
            })
            .expect("data");
        assert!(tick.starts_with(b"id: "), "{tick:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_over_the_limit_waits_until_one_closes() {
    let server = TestServer::start(&["--h2-max-streams", "5", "--tick-ms", "200"]).await;
    let (advertised, mut send) = connect(&server).await;
    assert_eq!(advertised, 5);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(open_stream(&server, &mut send).await);
    }

    let sixth_send = send.clone();
    let sixth_request = get(&server, "/sse/hello?timeout=0");
    let sixth = tokio::spawn(async move {
        let mut ready = sixth_send.ready().await.expect("ready");
        let (response, _) = ready.send_request(sixth_request, true).expect("send");
        response.await.expect("response").status()
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !sixth.is_finished(),
        "a 6th stream must wait for a free slot"
    );
    assert_eq!(server.state.streams.open_streams().http2, 5);

    drop(held.pop()); // resets one stream
    let status = tokio::time::timeout(PATIENCE, sixth)
        .await
        .expect("the 6th stream opens once a slot is free")
        .expect("task");
    assert_eq!(status, StatusCode::OK);
}
