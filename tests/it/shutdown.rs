//! Shutdown ends every open stream at once, not when the grace period runs out, however many
//! streams are open (axum issue #2673: open SSE streams must not hold the server up).

use crate::util::{Events, LONG_GRACE, PATIENCE, TestServer, Via};

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_open_streams_do_not_delay_shutdown() {
    // No ticks while the streams are held unread: only their first frame arrives.
    let mut server =
        TestServer::start(&[&LONG_GRACE[..], &["--tick-ms", "3600000"]].concat()).await;

    // 1000 HTTP/2 streams over 10 TLS connections, plus 20 HTTP/1.1 streams.
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = server.client(Via::H2Tls).await;
        for _ in 0..100 {
            let client = client.clone();
            opening.spawn(async move { Events::new(client.get("/sse/hello?timeout=0").await) });
        }
    }
    for _ in 0..20 {
        let client = server.client(Via::H1).await;
        opening.spawn(async move { Events::new(client.get("/sse/hello?timeout=0").await) });
    }
    let mut streams = Vec::new();
    while let Some(events) = opening.join_next().await {
        streams.push(events.expect("stream opens"));
    }
    crate::util::eventually("1020 streams open", || {
        let open = server.state.streams.open_streams();
        open.http2 == 1000 && open.http1 == 20
    })
    .await;

    server.stop_promptly().await;
    assert_eq!(server.state.streams.open_streams().total(), 0);

    // Every client sees its stream end (cleanly or by the connection closing).
    for events in &mut streams {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !events.ended {
            assert!(tokio::time::Instant::now() < deadline, "stream did not end");
            let _ = events.next_within(PATIENCE).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_shutdown_the_listeners_refuse_connections() {
    let mut server = TestServer::start(&[]).await;
    let http = server.http;
    server.stop().await;
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
}
