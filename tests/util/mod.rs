//! Shared helpers for the integration tests: start a real server on port 0, connect to it
//! over real TCP/TLS with HTTP/1.1 or HTTP/2 or over QUIC with HTTP/3, and read SSE events the
//! way a browser would.
#![allow(dead_code)] // each test file uses its own subset

pub mod abuse;
pub mod auth;
pub mod bench;
pub mod bin;
pub mod browser;
pub mod lab;
pub mod proxy;
pub mod redis_cluster;
pub mod redis_cluster_view;
pub mod redis_nodes;
pub mod redis_sentinel;
pub mod redis_server;
pub mod skip;
pub mod tabs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser as _;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use sselab::client::ResponseBody;
use sselab::client::{self, Conn, H2Windows, Trust};
use sselab::server::{ListenerKind, certs};
use sselab::sse::parser::{ParsedEvent, Parser};
use sselab::{Cli, Command, Server};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before it fails. Generous on purpose: a busy
/// 2-core machine must not make the suite flaky.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `--grace` for the shutdown tests: far beyond anything they wait for, so a server that held
/// its streams until the grace ran out fails them instead of passing.
pub const LONG_GRACE: [&str; 2] = ["--grace", "60"];

/// How soon after the stop a shutdown with streams open must be done: well inside
/// [`LONG_GRACE`], and generous for a busy 2-core machine.
pub const PROMPT_SHUTDOWN: Duration = Duration::from_secs(5);

/// A real sselab on three port-0 listeners with its own certificate directory.
pub struct TestServer {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub https_h1: SocketAddr,
    /// The HTTP/3 listener (UDP).
    pub h3: SocketAddr,
    /// The `--metrics` listener, when the test asked for one.
    pub metrics: Option<SocketAddr>,
    pub cert_pem: PathBuf,
    /// The certificate's SPKI hash, for Chromium's allow-list.
    pub spki: String,
    pub state: sselab::http::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

/// Every listener on a free loopback port.
pub const ALL_ON_PORT_0: [&str; 8] = [
    "--http",
    "127.0.0.1:0",
    "--https",
    "127.0.0.1:0",
    "--https-h1",
    "127.0.0.1:0",
    "--h3",
    "127.0.0.1:0",
];

/// `sselab` flags for a test server: all listeners on port 0, certs in `dir`, plus `extra`.
pub fn test_args(dir: &Path, extra: &[&str]) -> sselab::ServeArgs {
    args_with_listeners(&ALL_ON_PORT_0, dir, extra)
}

fn args_with_listeners(listeners: &[&str], dir: &Path, extra: &[&str]) -> sselab::ServeArgs {
    let mut argv: Vec<String> = std::iter::once("sselab")
        .chain(listeners.iter().copied())
        .chain(["--cert-dir"])
        .map(str::to_string)
        .collect();
    argv.push(dir.display().to_string());
    argv.extend(extra.iter().map(|s| s.to_string()));
    match Cli::try_parse_from(argv)
        .expect("test flags parse")
        .into_command()
    {
        Command::Serve(args) => args,
        other => unreachable!("no subcommand was given, got {other:?}"),
    }
}

impl TestServer {
    /// A server with the flags `extra`, on the test binary's one certificate
    /// ([`SharedCertificate`]) unless `extra` asks for other names.
    pub async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        SharedCertificate::get().copy_into(dir.path());
        let args = test_args(dir.path(), extra);
        Self::serve(Server::bind(&args).expect("server binds"), dir)
    }

    /// Stop this server, then start a new one on the same ports, with the same certificate,
    /// and these flags: a restart, as clients see it.
    pub async fn restart(&mut self, extra: &[&str]) {
        self.stop().await;
        let binds = [self.http, self.https, self.https_h1, self.h3].map(|addr| addr.to_string());
        let listeners = [
            "--http",
            &binds[0],
            "--https",
            &binds[1],
            "--https-h1",
            &binds[2],
            "--h3",
            &binds[3],
        ];
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let args = args_with_listeners(&listeners, dir.path(), extra);
        *self = Self::serve(rebind(&args).await, dir);
    }

    fn serve(server: Server, dir: TempDir) -> Self {
        let metrics = server.metrics_addr();
        let addr = |kind| server.addr(kind).expect("listener is on");
        let (http, https, https_h1, h3) = (
            addr(ListenerKind::Http),
            addr(ListenerKind::Https),
            addr(ListenerKind::HttpsH1),
            addr(ListenerKind::H3),
        );
        let certificate = server.certificate().expect("certificate");
        let (cert_pem, spki) = (
            certificate.cert_path.clone(),
            certificate.spki_sha256.clone(),
        );
        let state = server.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            http,
            https,
            https_h1,
            h3,
            metrics,
            cert_pem,
            spki,
            state,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Ask for shutdown and wait for `serve` to return; gives how long that took.
    pub async fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("serve returns after shutdown")
                .expect("serve task did not panic")
                .expect("serve returned Ok");
        }
        started.elapsed()
    }

    /// [`stop`](Self::stop) a server started with [`LONG_GRACE`]: fails unless its open
    /// streams ended at once, within [`PROMPT_SHUTDOWN`] rather than at the grace cut.
    pub async fn stop_promptly(&mut self) {
        let took = self.stop().await;
        assert!(
            took < PROMPT_SHUTDOWN,
            "shutdown took {took:?}: the open streams held it up (--grace {} s)",
            LONG_GRACE[1]
        );
    }

    /// A client of the given kind, connected to the matching listener.
    pub async fn client(&self, via: Via) -> Client {
        match via {
            Via::H1 => Client::h1(plain(self.http).await, format!("http://{}", self.http)).await,
            Via::H2c => Client::h2(plain(self.http).await, format!("http://{}", self.http)).await,
            Via::H2Tls => {
                let tls = tls(self.https, &self.cert_pem, &[b"h2", b"http/1.1"]).await;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                Client::h2(tls, format!("https://localhost:{}", self.https.port())).await
            }
            Via::H1Tls => {
                let tls = tls(self.https_h1, &self.cert_pem, &[b"h2", b"http/1.1"]).await;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
                Client::h1(tls, format!("https://localhost:{}", self.https_h1.port())).await
            }
            Via::H3 => Client::h3(self.h3, &self.cert_pem).await,
        }
    }
}

/// One certificate for every [`TestServer`] of a test binary, written into each server's own
/// directory, where the server loads it (it covers the default names): a browser shared by
/// the tests trusts it once, by its SPKI hash (`browser::launch`). A server started with
/// `--san` makes a new one, and gets a browser of its own.
pub struct SharedCertificate {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    pub spki: String,
}

impl SharedCertificate {
    pub fn get() -> &'static Self {
        static SHARED: std::sync::OnceLock<SharedCertificate> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let request = certs::CertRequest {
                dir: dir.path(),
                extra_sans: &[],
                regenerate: false,
            };
            let material = certs::generate(dir.path(), &request.names()).expect("a certificate");
            let read = |path: &Path| std::fs::read(path).expect("the certificate's files");
            Self {
                cert_pem: read(&material.cert_path),
                key_pem: read(&material.key_path),
                spki: material.spki_sha256,
            }
        })
    }

    fn copy_into(&self, dir: &Path) {
        std::fs::write(dir.join(certs::CERT_FILE), &self.cert_pem).expect("write cert.pem");
        std::fs::write(dir.join(certs::KEY_FILE), &self.key_pem).expect("write key.pem");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Which listener and protocol a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Plain HTTP/1.1 on the http listener.
    H1,
    /// HTTP/2 with prior knowledge on the http listener.
    H2c,
    /// HTTP/2 over TLS (ALPN h2) on the https listener.
    H2Tls,
    /// HTTP/1.1 over TLS on the https-h1 listener (offering h2 too, which it refuses).
    H1Tls,
    /// HTTP/3 over QUIC on the h3 listener (UDP).
    H3,
}

pub async fn plain(addr: SocketAddr) -> TcpStream {
    patiently("tcp connect", client::connect_tcp(addr)).await
}

/// A TLS connection trusting only the server's own certificate, offering `alpn`.
pub async fn tls(
    addr: SocketAddr,
    cert_pem: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = client::tls_config(Trust::Pem(cert_pem), alpn).expect("client TLS config");
    patiently(
        "TLS handshake with the server's own certificate",
        client::connect_tls(plain(addr).await, "localhost", Arc::new(config)),
    )
    .await
}

/// `what`, failing the test if it errs or takes longer than [`PATIENCE`].
async fn patiently<T>(what: &str, doing: impl Future<Output = Result<T, String>>) -> T {
    match tokio::time::timeout(PATIENCE, doing).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: not done within {PATIENCE:?}"),
    }
}

/// One HTTP connection, HTTP/1.1 or HTTP/2, on `sselab::client`; clones share it.
#[derive(Clone)]
pub struct Client {
    conn: Conn,
    pub base: String,
}

impl Client {
    pub async fn h1<IO>(io: IO, base: String) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = patiently("http1 handshake", Conn::handshake_h1(io)).await;
        Self { conn, base }
    }

    /// With hyper's own windows, which already keep h2 patient with unread streams.
    pub async fn h2<IO>(io: IO, base: String) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = patiently(
            "http2 handshake",
            Conn::handshake_h2(io, H2Windows::default()),
        )
        .await;
        Self { conn, base }
    }

    /// HTTP/3 to the h3 listener at `addr`, trusting only the server's own certificate.
    pub async fn h3(addr: SocketAddr, cert_pem: &Path) -> Self {
        let tls = client::tls_config(Trust::Pem(cert_pem), &[b"h3"]).expect("client TLS config");
        let quic = client::quic_config(Arc::new(tls)).expect("QUIC client config");
        let conn = patiently(
            "QUIC + HTTP/3 handshake",
            Conn::connect_h3(addr, "localhost", quic),
        )
        .await;
        Self {
            conn,
            base: format!("https://localhost:{}", addr.port()),
        }
    }

    /// Close the connection now (HTTP/3: CONNECTION_CLOSE), as a client that goes away.
    pub fn close(&self) {
        self.conn.close();
    }

    /// The QUIC connection under an HTTP/3 client; `None` over TCP.
    pub fn quic(&self) -> Option<&quinn::Connection> {
        self.conn.quic()
    }

    /// The connection is gone (closed by either side): nothing more can be sent on it.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    pub async fn get(&self, path: &str) -> Response<ResponseBody> {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response<ResponseBody> {
        let mut builder = self.request("GET", path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::default()).expect("request"))
            .await
    }

    /// POST a body with a content type.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Response<ResponseBody> {
        let request = self
            .request("POST", path)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(body.into()))
            .expect("request");
        self.send(request).await
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Response<ResponseBody> {
        self.post(path, "application/json", body.to_string()).await
    }

    pub async fn delete(&self, path: &str) -> Response<ResponseBody> {
        self.send(
            self.request("DELETE", path)
                .body(Full::default())
                .expect("request"),
        )
        .await
    }

    /// Subscribe to an SSE path and read its `connected` event.
    pub async fn subscribe(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> (Events, serde_json::Value) {
        let headers: Vec<(&str, &str)> = last_event_id
            .map(|id| ("last-event-id", id))
            .into_iter()
            .collect();
        let mut events = Events::new(self.get_with(path, &headers).await);
        assert_eq!(events.status, StatusCode::OK, "{path}");
        let connected = events.connected().await;
        (events, connected)
    }

    /// A request builder for `path` on this server, in the URI form the protocol wants.
    pub fn request(&self, method: &str, path: &str) -> http::request::Builder {
        let uri: http::Uri = format!("{}{}", self.base, path).parse().expect("uri");
        self.conn.request(method, &uri)
    }

    /// Send once the connection is ready (HTTP/1.1: the previous response was read whole).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Response<ResponseBody> {
        patiently(
            "connection ready and response in time",
            self.conn.send(request),
        )
        .await
    }
}

/// The whole body as text (for non-streaming answers).
pub async fn text(response: Response<ResponseBody>) -> String {
    let body = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("body in time")
        .expect("body");
    String::from_utf8(body.to_bytes().to_vec()).expect("utf-8 body")
}

pub async fn json(response: Response<ResponseBody>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).expect("JSON body")
}

/// An SSE response being read event by event.
pub struct Events {
    pub status: StatusCode,
    pub version: Version,
    pub headers: http::HeaderMap,
    body: ResponseBody,
    parser: Parser,
    ready: std::collections::VecDeque<ParsedEvent>,
    pub ended: bool,
}

impl Events {
    pub fn new(response: Response<ResponseBody>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            parser: Parser::new(),
            ready: Default::default(),
            ended: false,
        }
    }

    /// The next event; `None` when the server ended the stream. Panics after [`PATIENCE`].
    pub async fn next(&mut self) -> Option<ParsedEvent> {
        self.next_within(PATIENCE)
            .await
            .expect("an event or the end of the stream in time")
    }

    /// `Err(())` when nothing happened within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<ParsedEvent>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            self.read_frame(deadline).await?;
        }
    }

    /// Read the body's next frame into the parser; `Err(())` if none came by `deadline`.
    async fn read_frame(&mut self, deadline: tokio::time::Instant) -> Result<(), ()> {
        let frame = tokio::time::timeout_at(deadline, self.body.frame())
            .await
            .map_err(|_| ())?;
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.ready.extend(self.parser.feed(&data));
                }
            }
            // A reset or a closed connection ends the stream as far as a client cares.
            Some(Err(_)) | None => self.ended = true,
        }
        Ok(())
    }

    /// Read the first event every stream starts with, `connected`, and give its JSON (one
    /// shape on every endpoint) plus the frame's `retry` and `id` (null when it had none).
    pub async fn connected(&mut self) -> serde_json::Value {
        let event = self.next().await.expect("the connected event");
        assert_eq!(event.event, "connected");
        let mut info: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
        info["retry"] = event.retry.into();
        info["id"] = (!event.id.is_empty()).then_some(event.id).into();
        info
    }

    /// Read `n` events, failing if the stream ends first.
    pub async fn take(&mut self, n: usize) -> Vec<ParsedEvent> {
        let mut events = Vec::with_capacity(n);
        for i in 0..n {
            match self.next().await {
                Some(event) => events.push(event),
                None => panic!("stream ended after {i} of {n} events"),
            }
        }
        events
    }

    pub fn comments(&self) -> u64 {
        self.parser.comments()
    }

    /// Read until `n` comments (keep-alives) have come in all, with no event and no end
    /// meanwhile; panics after [`PATIENCE`].
    pub async fn only_comments_until(&mut self, n: u64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.comments() < n {
            assert!(self.ready.is_empty(), "an event: {:?}", self.ready);
            assert!(
                !self.ended,
                "the stream ended after {} comments",
                self.comments()
            );
            let read = self.read_frame(deadline).await;
            assert!(read.is_ok(), "{} of {n} comments in time", self.comments());
        }
        assert!(self.ready.is_empty(), "an event: {:?}", self.ready);
    }
}

/// The value of sample `name` (with its labels, as printed) in a Prometheus exposition.
pub fn metric_sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{metrics}")) as u64
}

pub fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
        .unwrap_or("")
}

/// Assert a one-line error body starting with `start`.
pub async fn assert_one_line(response: Response<ResponseBody>, status: StatusCode, start: &str) {
    assert_eq!(response.status(), status, "expected {status} for {start:?}");
    let body = text(response).await;
    assert!(
        body.starts_with(start),
        "{body:?} should start with {start:?}"
    );
    assert_eq!(body.trim_end().lines().count(), 1, "one line: {body:?}");
}

/// Ids of events, as numbers.
pub fn ids(events: &[ParsedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.id.parse().expect("numeric id"))
        .collect()
}

/// Wait until `check` holds, polling; panics after [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /api/orders` with `body`, which must be created (201); gives the order's id.
pub async fn create_order(client: &Client, body: serde_json::Value) -> String {
    let answer = client.post_json("/api/orders", body).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let created = json(answer).await;
    created["id"].as_str().expect("order id").to_string()
}

/// A publish that must be accepted: asserts 202 and gives the JSON answer.
pub async fn accepted(response: Response<ResponseBody>) -> serde_json::Value {
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "the publish was accepted"
    );
    json(response).await
}

/// [`eventually`] for a check that has to await (an HTTP request); panics after [`PATIENCE`].
pub async fn eventually_async(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bind a restarted server's ports again, waiting while one is still in use (the stopped
/// server's QUIC endpoint may not have let its UDP port go yet, or a client's ephemeral
/// socket holds it for a moment: seen once with the browser tests running beside), for
/// [`PATIENCE`] at most.
async fn rebind(args: &sselab::ServeArgs) -> Server {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let error = match Server::bind(args) {
            Ok(server) => return server,
            Err(error) => error,
        };
        let in_use = error.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
        });
        assert!(
            in_use && Instant::now() < deadline,
            "server binds again on its ports: {error:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
