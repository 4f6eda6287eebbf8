//! The servers a report measures: sselab started in this process on free loopback ports (a
//! server per set of flags a cell needs), or a running sselab named by `--url`, whose other
//! listeners are read from its `/lab` page.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser as _;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::super::{Server, trusted_spki};
use crate::cli::{Cli, Command, ServeArgs};
use crate::client;
use crate::server::ListenerKind;
use crate::sse::StreamRegistry;

/// How long reading a running server's counters or its `/lab` page may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The flags every in-process server gets: a tick every 500 ms, so a stream is seen ticking
/// within a second; streams that never end on their own, so a probe that waits behind them
/// waits for good (a cell that wants an end asks with `?timeout=`).
const COMMON: [&str; 4] = ["--tick-ms", "500", "--timeout", "0"];

/// The server's stream cap the `cap-*` cells run against (the README's k).
pub const SERVER_CAP: &str = "5";

/// What the `engine-cap-h2` server advertises: far above any engine's own cap.
pub const WIDE_CAP: &str = "1000";

/// The listeners of one server, as the browser reaches them.
#[derive(Debug)]
pub struct Lab {
    /// e.g. `http://127.0.0.1:8080`
    pub http: Option<String>,
    /// TLS with HTTP/1.1 only.
    pub https_h1: Option<String>,
    /// TLS with HTTP/2.
    pub https: Option<String>,
    /// The HTTP/3 listener's origin (UDP).
    pub h3: Option<String>,
    streams: StreamCount,
}

/// Where a server's count of open streams comes from.
#[derive(Debug)]
enum StreamCount {
    InProcess(StreamRegistry),
    /// `GET /api/stats` on the plain listener of a running sselab.
    Stats(String),
}

impl Lab {
    /// The server's own count of open SSE streams.
    pub async fn open_streams(&self) -> anyhow::Result<u64> {
        match &self.streams {
            StreamCount::InProcess(streams) => Ok(streams.open_streams().total() as u64),
            StreamCount::Stats(url) => {
                let body = client::get_body(url, None, false, READ_TIMEOUT).await?;
                let stats: serde_json::Value =
                    serde_json::from_slice(&body).with_context(|| format!("{url}: not JSON"))?;
                stats["streams"]["open_total"]
                    .as_u64()
                    .with_context(|| format!("{url} has no streams.open_total"))
            }
        }
    }

    /// Wait (at most `within`) until the server holds no stream: the last cell's tabs are
    /// gone, so this cell's count is its own.
    pub async fn until_idle(&self, within: Duration) {
        let started = Instant::now();
        while started.elapsed() < within && self.open_streams().await.is_ok_and(|n| n > 0) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::debug!(
            waited_ms = started.elapsed().as_millis() as u64,
            "the server's streams from the last cell ended"
        );
    }
}

/// A server a cell needs, or why it is not there.
pub type Needed = Result<Lab, String>;

/// Every server the cells use.
pub struct Servers {
    /// Every listener, default caps: most cells.
    pub main: Lab,
    /// `--h2-max-streams 5 --h3-max-streams 5`.
    pub capped: Needed,
    /// `--h2-max-streams 1000`.
    pub wide: Needed,
    /// Plain HTTP on 127.0.0.2: the second site of `cross-site`.
    pub second_site: Needed,
    /// The certificate's SPKI hash, for the browsers to trust.
    pub spki: Option<String>,
    /// `in-process` or the `--url`.
    pub described: String,
    running: Vec<Running>,
    _certs: Option<TempDir>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Servers {
    /// Start the servers here, on free loopback ports, sharing one fresh certificate.
    pub async fn start() -> anyhow::Result<Self> {
        let certs = tempfile::tempdir().context("a directory for the certificate")?;
        let dir = certs.path();
        let mut running = Vec::new();
        let tls = Listening {
            https: true,
            https_h1: true,
            h3: true,
        };
        let main = start(&mut running, dir, "127.0.0.1", tls, &[])?;
        let caps = [
            "--h2-max-streams",
            SERVER_CAP,
            "--h3-max-streams",
            SERVER_CAP,
        ];
        let capped = start(&mut running, dir, "127.0.0.1", tls, &caps);
        let wide = Listening { h3: false, ..tls };
        let wide = start(
            &mut running,
            dir,
            "127.0.0.1",
            wide,
            &["--h2-max-streams", WIDE_CAP],
        );
        let plain = Listening {
            https: false,
            https_h1: false,
            h3: false,
        };
        let second_site = start(&mut running, dir, "127.0.0.2", plain, &[]);
        let spki = trusted_spki(dir)?;
        Ok(Self {
            main,
            capped: capped.map_err(|e| format!("{e:#}")),
            wide: wide.map_err(|e| format!("{e:#}")),
            second_site: second_site.map_err(|e| format!("starting sselab on 127.0.0.2: {e:#}")),
            spki,
            described: "in-process".into(),
            running,
            _certs: Some(certs),
        })
    }

    /// A running sselab: `url` is its plain HTTP/1.1 listener; the others come from its
    /// `/lab` page, the certificate to trust from `cert_dir`.
    pub async fn connect(url: &str, cert_dir: &Path) -> anyhow::Result<Self> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("--url {url} is not a URL"))?;
        let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            anyhow::bail!("--url {url}: give the plain HTTP listener, e.g. http://127.0.0.1:8080/");
        };
        let host = authority.host();
        let http = format!("http://{authority}");
        let lab = client::get_body(&format!("{http}/lab"), None, false, READ_TIMEOUT)
            .await
            .with_context(|| format!("--url {url}: reading its /lab page (is it sselab?)"))?;
        let lab = String::from_utf8_lossy(&lab);
        let origin = |kind: ListenerKind| {
            listener_port(&lab, kind.name())
                .map(|port| format!("{}://{host}:{port}", kind.scheme()))
        };
        let not_here = |what: &str| {
            format!(
                "needs a server of its own ({what}), which --url does not start; run without --url"
            )
        };
        Ok(Self {
            main: Lab {
                https_h1: origin(ListenerKind::HttpsH1),
                https: origin(ListenerKind::Https),
                h3: origin(ListenerKind::H3),
                streams: StreamCount::Stats(format!("{http}/api/stats")),
                http: Some(http),
            },
            capped: Err(not_here("--h2-max-streams 5 --h3-max-streams 5")),
            wide: Err(not_here("--h2-max-streams 1000")),
            second_site: Err(not_here("a second site on 127.0.0.2")),
            spki: trusted_spki(cert_dir)?,
            described: url.to_string(),
            running: Vec::new(),
            _certs: None,
        })
    }

    /// Stop the servers this report started.
    pub async fn stop(self) {
        for Running { stop, task } in self.running {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// `<option value="KIND" data-port="PORT">` in sselab's `/lab` page.
fn listener_port(lab: &str, kind: &str) -> Option<u16> {
    let marker = format!("<option value=\"{kind}\" data-port=\"");
    let rest = &lab[lab.find(&marker)? + marker.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// Which TLS and QUIC listeners a server has (plain HTTP it always has).
#[derive(Debug, Clone, Copy)]
struct Listening {
    https: bool,
    https_h1: bool,
    h3: bool,
}

/// Start sselab with plain HTTP on `host`, the `listening` ones on 127.0.0.1, and `flags`,
/// the certificate in `dir`.
fn start(
    running: &mut Vec<Running>,
    dir: &Path,
    host: &str,
    listening: Listening,
    flags: &[&str],
) -> anyhow::Result<Lab> {
    let args = serve_args(dir, host, listening, flags)?;
    let server = Server::bind(&args)?;
    let origin = |kind: ListenerKind, name: &str| {
        server
            .addr(kind)
            .map(|addr| format!("{}://{name}:{}", kind.scheme(), addr.port()))
    };
    // As a person types them: HTTP/1.1 at the IP, TLS at the name the certificate has first,
    // HTTP/3 at the IP (the QUIC origin a browser is told to force).
    let lab = Lab {
        http: origin(ListenerKind::Http, host),
        https_h1: origin(ListenerKind::HttpsH1, "localhost"),
        https: origin(ListenerKind::Https, "localhost"),
        h3: origin(ListenerKind::H3, host),
        streams: StreamCount::InProcess(server.state().streams.clone()),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    running.push(Running { stop, task });
    Ok(lab)
}

/// `sselab` flags, parsed as the command line would be: plain HTTP on `host`, the
/// `listening` ones on 127.0.0.1, every port free, no metrics listener.
fn serve_args(
    dir: &Path,
    host: &str,
    listening: Listening,
    flags: &[&str],
) -> anyhow::Result<ServeArgs> {
    let on = |yes: bool| if yes { "127.0.0.1:0" } else { "off" };
    let http = format!("{host}:0");
    let mut argv: Vec<String> = [
        "sselab",
        "--http",
        &http,
        "--https",
        on(listening.https),
        "--https-h1",
        on(listening.https_h1),
        "--h3",
        on(listening.h3),
        "--metrics",
        "off",
        "--cert-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(dir.display().to_string());
    argv.extend(COMMON.iter().chain(flags).map(|s| s.to_string()));
    match Cli::try_parse_from(argv)
        .context("the report's own server flags")?
        .into_command()
    {
        Command::Serve(args) => Ok(args),
        _ => anyhow::bail!("the report's server flags named a subcommand"),
    }
}
