//! Command-line flags (clap derive), each also readable from an `SSELAB_*` environment variable.
//!
//! This module only describes and validates what a person typed; it does not open files or
//! sockets. `main.rs` parses a [`Cli`] and hands the chosen command to [`crate::commands`].
//! The load generator's own flags live with it ([`crate::bench::BenchCommand`], a mode
//! each), since each mode's `run` takes them as they are.

mod auth;
mod limits;
mod report;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use auth::{AuthArgs, TokenArgs};
pub use limits::{DEFAULT_MAX_CONNECTIONS_PER_IP, LimitArgs};
pub use report::{CellId, ReportArgs};
pub use serve::{Refusals, SameId, ServeArgs};

use crate::browser::Engine;

#[derive(Debug, Parser)]
#[command(
    name = "sselab",
    version,
    // `--timeout -5` should be refused as a bad value for --timeout, not as an unknown flag.
    allow_negative_numbers = true,
    args_conflicts_with_subcommands = true,
    about = "A Server-Sent Events server and lab: see how SSE behaves over HTTP/1.1 and HTTP/2",
    long_about = "Serves the same SSE endpoints on plain HTTP/1.1, HTTPS with HTTP/2 and an \
                  HTTPS HTTP/1.1-only control. With no subcommand, `sselab` is `sselab serve`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start; the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    #[command(allow_negative_numbers = true)]
    Serve(ServeArgs),
    /// (Re)generate the self-signed certificate and print how to trust it.
    Cert(CertCommand),
    /// Open N tabs of a page in one headless browser profile and report how many streams
    /// opened; the last line is `open=N pending=M protocol=P connections=C
    /// [probe_fetch=… probe_nav=…] server_streams=S`.
    Tabs(TabsArgs),
    /// Save a PNG of a page as a headless browser renders it (e.g. /lab?run=http:10,https:10).
    Shot(ShotArgs),
    /// Load-test any SSE server (`load`), time its clients' reconnects across a restart
    /// (`reconnect`), or attack it on this machine (`attack`).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Print a signed token for the server's key, e.g.
    /// `sselab token --publish 'topics/*' --subscribe '*' --ttl 1h`.
    Token(TokenArgs),
    /// Measure the lab's whole matrix in every installed engine (tabs per listener, the
    /// probe, the stream caps, reconnects, cross-site sharing, refusals) against servers it
    /// starts itself, and write report.html, report.json and README-table.md to --out.
    Report(ReportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BrowserArgs {
    /// The browser: Debian's Chromium (over CDP), Firefox ESR (over WebDriver BiDi) or WebKitGTK's
    /// MiniBrowser (over WebDriver classic, under a private Xvfb; no HTTP/3).
    #[arg(
        long = "browser",
        value_name = "ENGINE",
        value_enum,
        default_value_t = Engine::Chromium,
        env = "SSELAB_BROWSER"
    )]
    pub engine: Engine,

    /// Trust the certificate in this directory when it is there (Chromium: by its SPKI hash;
    /// Firefox and WebKit: WebDriver's acceptInsecureCerts for the session).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "certs",
        env = "SSELAB_CERT_DIR"
    )]
    pub cert_dir: PathBuf,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TabsArgs {
    /// The page every tab opens, e.g. https://127.0.0.1:8443/ (the clock page).
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// How many tabs.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=200))]
    pub tabs: u64,

    /// The longest wait, in seconds, for the tabs to settle: they are read as soon as every
    /// tab's stream ticks, or as soon as no tab has changed (page, stream open, ticking) for a
    /// second or more; when this runs out first they are read as they are.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub settle: u64,

    /// After the tabs settle, time what else the origin still serves: one more tab's
    /// navigation to the same page, and a fetch() of /proto from one of the tabs. Adds
    /// `probe_fetch=… probe_nav=…` (milliseconds, or `blocked`) to the last line.
    #[arg(long)]
    pub probe: bool,

    /// Seconds a probe waits before it counts as blocked.
    #[arg(long, value_name = "SECS", default_value_t = 8, requires = "probe",
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub probe_timeout: u64,

    /// Add `share=MODE` to the page's query: how the page shares one stream between tabs
    /// (sselab.js). Not given: the URL as it is, which is `none`.
    #[arg(long, value_name = "MODE", value_enum)]
    pub share: Option<Share>,

    /// How the browser reaches the page: `tcp` (QUIC off: HTTP/1.1 or HTTP/2, whichever the
    /// URL's listener speaks) or `h3` (QUIC forced on for the URL's origin, which must be
    /// https://, e.g. https://127.0.0.1:8443/ for sselab's --h3 listener).
    #[arg(
        long,
        value_name = "PROTO",
        value_enum,
        default_value_t = TabsProto::Tcp,
        env = "SSELAB_TABS_PROTO"
    )]
    pub proto: TabsProto,

    /// The sselab whose `/api/stats` gives `server_streams`, e.g. https://127.0.0.1:8443/,
    /// read over TCP. Default: the page's origin; with `--proto h3` that is the HTTPS
    /// listener on the UDP port's number, where sselab puts it unless told otherwise.
    #[arg(long, value_name = "URL", env = "SSELAB_STATS_FROM")]
    pub stats_from: Option<String>,

    #[command(flatten)]
    pub browser: BrowserArgs,
}

/// How `sselab tabs`' browser reaches the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TabsProto {
    /// QUIC off: the browser speaks what the URL's TCP listener offers.
    Tcp,
    /// HTTP/3: QUIC forced on for the URL's origin.
    H3,
}

/// How tabs of one page share an SSE stream (the `share=` query of sselab's pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Share {
    /// One tab holds the stream and relays it to the others (Web Locks + BroadcastChannel).
    Leader,
    /// A SharedWorker holds the stream for every tab.
    Worker,
    /// Every tab its own EventSource.
    None,
}

impl Share {
    pub fn name(self) -> &'static str {
        match self {
            Share::Leader => "leader",
            Share::Worker => "worker",
            Share::None => "none",
        }
    }
}

impl TabsArgs {
    /// The page every tab opens: `--url`, with `share=MODE` added to its query.
    pub fn page_url(&self) -> String {
        let Some(share) = self.share else {
            return self.url.clone();
        };
        let (url, fragment) = match self.url.split_once('#') {
            Some((url, fragment)) => (url, format!("#{fragment}")),
            None => (self.url.as_str(), String::new()),
        };
        let separator = match url.find('?') {
            None => "?",
            Some(at) if at + 1 == url.len() || url.ends_with('&') => "",
            Some(_) => "&",
        };
        format!("{url}{separator}share={}{fragment}", share.name())
    }
}

#[derive(Debug, Clone, Args)]
pub struct ShotArgs {
    /// The page to capture.
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// Where to write the PNG.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Seconds to wait after the page loaded.
    #[arg(long, value_name = "SECS", default_value_t = 6,
          value_parser = clap::value_parser!(u64).range(0..=120))]
    pub wait: u64,

    #[command(flatten)]
    pub browser: BrowserArgs,
}

impl Cli {
    /// The command to run: `serve` with the top-level flags when no subcommand was given.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

impl Command {
    /// How many `-v` were given.
    pub fn verbosity(&self) -> u8 {
        match self {
            Command::Serve(args) => args.log.verbose,
            Command::Cert(args) => args.log.verbose,
            Command::Tabs(args) => args.browser.log.verbose,
            Command::Shot(args) => args.browser.log.verbose,
            Command::Bench(mode) => mode.shared().verbose,
            Command::Token(args) => args.log.verbose,
            Command::Report(args) => args.log.verbose,
        }
    }
}

#[derive(Debug, Clone, Copy, Args)]
pub struct LogArgs {
    /// More log output: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Args)]
pub struct CertCommand {
    #[command(flatten)]
    pub cert: CertArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Where the self-signed certificate lives and which names it covers.
#[derive(Debug, Clone, Args)]
pub struct CertArgs {
    /// Directory holding cert.pem and key.pem (created when missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "certs",
        env = "SSELAB_CERT_DIR"
    )]
    pub cert_dir: PathBuf,

    /// Extra subject alternative name (DNS name or IP); localhost, 127.0.0.1 and ::1 are always in.
    #[arg(
        long = "san",
        value_name = "NAME",
        env = "SSELAB_SAN",
        value_delimiter = ','
    )]
    pub sans: Vec<String>,
}
