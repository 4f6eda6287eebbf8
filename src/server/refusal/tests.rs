use super::*;
use tokio::net::TcpListener;

const LIMITS: ConnLimits = ConnLimits {
    max_connections: 7,
    max_connections_per_ip: 3,
};

/// What Chromium's EventSource sends (its Accept, and an Origin when cross-origin).
const EVENT_SOURCE: &[u8] = b"GET /sse/hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
    Connection: keep-alive\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\
    Origin: http://127.0.0.1:9000\r\n\r\n";

/// What curl sends by default.
const CURL: &[u8] = b"GET /sse/hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
    User-Agent: curl/8.14.1\r\nAccept: */*\r\n\r\n";

#[test]
fn the_answer_follows_the_accept_header_and_silence_is_closed() {
    assert_eq!(answer_for(EVENT_SOURCE, true), ConnAnswer::Stream);
    assert_eq!(answer_for(EVENT_SOURCE, false), ConnAnswer::Status);
    assert_eq!(answer_for(CURL, true), ConnAnswer::Status);
    let either =
        b"GET / HTTP/1.1\r\naccept: application/json\r\nACCEPT: Text/Event-Stream;q=0.5\r\n\r\n";
    assert_eq!(answer_for(either, true), ConnAnswer::Stream);
    assert_eq!(answer_for(b"", true), ConnAnswer::Closed);
    assert_eq!(
        answer_for(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true),
        ConnAnswer::Closed
    );
    // A line cut off by the deadline or the byte bound is not read: `text/event` is not it.
    let cut = b"GET / HTTP/1.1\r\nAccept: text/event-stream\r\nAccept: text/event";
    assert!(wants_event_stream(cut));
    assert!(!wants_event_stream(
        b"GET / HTTP/1.1\r\nAccept: text/event-stream"
    ));
    assert_eq!(
        header_values(EVENT_SOURCE, "origin").collect::<Vec<_>>(),
        [&b"http://127.0.0.1:9000"[..]]
    );
}

#[test]
fn the_canned_503_is_one_line_naming_the_flag_with_a_right_length() {
    for (refusal, flag) in [
        (Refusal::MaxConnections, "(--max-connections)"),
        (Refusal::MaxConnectionsPerIp, "(--max-connections-per-ip)"),
    ] {
        let response = status_response(&message(refusal, LIMITS), "");
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("\r\nretry-after: 5\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        assert!(body.contains(flag), "{body}");
        assert_eq!(body.lines().count(), 1);
    }
}

#[test]
fn the_refusal_stream_is_one_frame_with_retry_and_no_id() {
    let cors = AllowedOrigins::Any.header_lines(None);
    let message = message(Refusal::MaxConnectionsPerIp, LIMITS);
    let response = stream_response(Refusal::MaxConnectionsPerIp, &message, 5432, &cors);
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "x-sselab-refused: max_connections_per_ip",
        "access-control-allow-origin: *",
        "connection: close",
        &format!("content-length: {}", body.len()),
    ] {
        let lines = format!("{head}\r\n");
        assert!(
            lines.contains(&format!("\r\n{line}\r\n")),
            "{line} in {head}"
        );
    }
    assert_eq!(
        body,
        "retry: 5432\nevent: refused\ndata: {\"message\":\"too many connections from your \
         address: at most 3 (--max-connections-per-ip); try again later\",\
         \"reason\":\"max_connections_per_ip\",\"retry_ms\":5432,\"status\":503}\n\n"
    );
}

#[test]
fn retry_is_the_retry_after_spread_by_the_jitter() {
    let mut rng = fastrand::Rng::with_seed(7);
    assert_eq!(retry_ms(0.0, &mut rng), 5000);
    let spread: Vec<u64> = (0..200).map(|_| retry_ms(0.2, &mut rng)).collect();
    assert!(
        spread.iter().all(|ms| (5000..=6000).contains(ms)),
        "{spread:?}"
    );
    let (low, high) = (spread.iter().min(), spread.iter().max());
    assert!(low < Some(&5200) && high > Some(&5800), "{low:?}..{high:?}");
}

/// The server's end and the client's end of a fresh connection.
async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().expect("bound"))
        .await
        .expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (server, client)
}

#[tokio::test]
async fn past_the_refusals_being_read_a_connection_is_closed_at_once() {
    let refusals = Arc::new(Refusals::new(
        RefusalConfig {
            event_streams: true,
            retry_jitter: 0.0,
            origins: AllowedOrigins::Any,
        },
        1,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (first, mut first_client) = pair(&listener).await;
    refusals.turn_away(first, ListenerKind::Http, Refusal::MaxConnections, LIMITS);
    // The first holds the one place to be read in: the second is closed and counted at once.
    let (second, mut second_client) = pair(&listener).await;
    refusals.turn_away(second, ListenerKind::Http, Refusal::MaxConnections, LIMITS);
    let counted = |answer| {
        refusals
            .answered()
            .into_iter()
            .find(|(l, r, a, _)| {
                (*l, *r, *a) == (ListenerKind::Http, Refusal::MaxConnections, answer)
            })
            .map_or(0, |(.., n)| n)
    };
    assert_eq!(counted(ConnAnswer::Closed), 1);
    let mut nothing = Vec::new();
    second_client
        .read_to_end(&mut nothing)
        .await
        .expect("a clean close");
    assert!(nothing.is_empty());

    // The first is still being read, and its EventSource gets the stream.
    first_client.write_all(EVENT_SOURCE).await.expect("send");
    let mut answer = String::new();
    first_client
        .read_to_string(&mut answer)
        .await
        .expect("the answer, then a clean close");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\"status\":503}\n\n"), "{answer}");
    assert_eq!(counted(ConnAnswer::Stream), 1);
}
