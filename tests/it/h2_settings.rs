//! HTTP/2 seen at the frame level with the `h2` crate: the SETTINGS the server advertises,
//! and many concurrent SSE streams multiplexed on one connection.

use std::task::Poll;

use crate::util::{PATIENCE, TestServer};
use bytes::Bytes;
use h2::PingPong;
use h2::client::{Connection, SendRequest};
use http::{Request, StatusCode};

type Io = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// An h2 connection over TLS (ALPN h2) whose SETTINGS have been received; returns the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS, the request handle and the connection's PING.
async fn connect(server: &TestServer) -> (usize, SendRequest<Bytes>, PingPong) {
    let io = crate::util::tls(server.https, &server.cert_pem, &[b"h2"]).await;
    // Many streams' small SSE frames can arrive before their readers are scheduled on a busy
    // machine; h2's default budget for buffered small DATA frames would then make the client
    // itself send GOAWAY (ENHANCE_YOUR_CALM). A larger budget keeps the client patient.
    let (mut send, mut connection): (_, Connection<Io, Bytes>) = h2::client::Builder::new()
        .data_frame_budget(8 << 20)
        .handshake(io)
        .await
        .expect("h2 handshake");
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
    let ping = connection
        .ping_pong()
        .expect("the first to ask for the PING handle");
    tokio::spawn(connection);
    (advertised, send, ping)
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
    let (advertised, _send, _) = connect(&server).await;
    assert_eq!(advertised, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_holds_150_streams_when_the_flag_allows() {
    let server = TestServer::start(&["--h2-max-streams", "200", "--tick-ms", "300"]).await;
    let (advertised, send, _) = connect(&server).await;
    assert_eq!(advertised, 200);

    // Each stream is read as it arrives, as a browser would: an HTTP/2 client that leaves
    // many small DATA frames unread is right to give up on the connection.
    let (opened_tx, mut opened) = tokio::sync::mpsc::channel::<()>(150);
    let (ticked_tx, mut ticked) = tokio::sync::mpsc::channel::<()>(150);
    let hold = tokio_util::sync::CancellationToken::new();
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..150 {
        let send = send.clone();
        let request = get(&server, "/sse/hello?timeout=0");
        let (opened_tx, ticked_tx, hold) = (opened_tx.clone(), ticked_tx.clone(), hold.clone());
        streams.spawn(async move {
            let mut send = send.ready().await.expect("ready");
            let (response, _) = send.send_request(request, true).expect("send");
            let response = response.await.expect("response");
            assert_eq!(response.status(), StatusCode::OK);
            let mut body = response.into_body();
            let mut told_open = false;
            let mut told_ticked = false;
            loop {
                let data = tokio::select! {
                    _ = hold.cancelled() => return,
                    data = body.data() => data,
                };
                let data = data.expect("the stream stays open").expect("data");
                let _ = body.flow_control().release_capacity(data.len());
                if !told_open {
                    told_open = true;
                    opened_tx.send(()).await.expect("report open");
                } else if !told_ticked && data.windows(4).any(|w| w == b"id: ") {
                    told_ticked = true;
                    ticked_tx.send(()).await.expect("report tick");
                }
            }
        });
    }
    for _ in 0..150 {
        tokio::time::timeout(PATIENCE, opened.recv())
            .await
            .expect("150 streams open in time");
    }
    crate::util::eventually("150 HTTP/2 streams open on the server", || {
        server.state.streams.open_streams().http2 == 150
    })
    .await;
    // Every one of them is live: each receives ticks.
    for _ in 0..150 {
        tokio::time::timeout(PATIENCE, ticked.recv())
            .await
            .expect("every stream ticks");
    }
    assert_eq!(server.state.streams.open_streams().http2, 150);
    hold.cancel();
    while let Some(result) = streams.join_next().await {
        result.expect("stream task");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_over_the_limit_waits_until_one_closes() {
    let server = TestServer::start(&["--h2-max-streams", "5", "--tick-ms", "200"]).await;
    let (advertised, mut send, mut ping) = connect(&server).await;
    assert_eq!(advertised, 5);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(open_stream(&server, &mut send).await);
    }

    // The client queues the sixth; as SETTINGS_MAX_CONCURRENT_STREAMS says, it must not send
    // its HEADERS while five are open. After a PING round trip the connection has sent all it
    // could (the PING went out with anything queued before it), and the sixth is still
    // pending-open: `poll_ready` waits on exactly that.
    let mut sixth_send = send.clone().ready().await.expect("ready");
    let (sixth, _) = sixth_send
        .send_request(get(&server, "/sse/hello?timeout=0"), true)
        .expect("queued");
    tokio::time::timeout(PATIENCE, ping.ping(h2::Ping::opaque()))
        .await
        .expect("a PONG in time")
        .expect("PONG");
    let held_back = std::future::poll_fn(|cx| Poll::Ready(sixth_send.poll_ready(cx))).await;
    assert!(
        held_back.is_pending(),
        "the 6th stream was sent with five open"
    );
    let streams = server.state.streams.stats();
    assert_eq!((streams.open_total, streams.opened_total), (5, 5));

    drop(held.pop()); // resets one stream
    let response = tokio::time::timeout(PATIENCE, sixth)
        .await
        .expect("the 6th stream opens once a slot is free")
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}

/// A refusal answered before the request body (a publish without a token) waits a bounded
/// time for a body that never comes, then answers and ends the stream as RFC 9113 §8.1 says:
/// `RST_STREAM(NO_ERROR)` after the answer, never a hung request or a `CANCEL`. (The wait is
/// what lets curl 7.88 show the 401 instead of a framing error: scripts/curl_checks.sh.)
#[tokio::test(flavor = "multi_thread")]
async fn an_answer_before_the_upload_is_not_a_cancelled_stream() {
    let server = TestServer::start(&["--jwt-secret", crate::util::auth::SECRET]).await;
    let (_, send, _) = connect(&server).await;
    let mut send = send.ready().await.expect("ready");
    let request = Request::post(format!(
        "https://localhost:{}/api/topics/news/events",
        server.https.port()
    ))
    .body(())
    .expect("request");
    // Headers only: the body is never sent, so the server answers without it.
    let (response, mut upload) = send.send_request(request, false).expect("send");
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("an answer without the body")
        .expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let reason = tokio::time::timeout(PATIENCE, std::future::poll_fn(|cx| upload.poll_reset(cx)))
        .await
        .expect("the stream is reset once answered")
        .expect("a reset reason");
    assert_eq!(reason, h2::Reason::NO_ERROR);
}
