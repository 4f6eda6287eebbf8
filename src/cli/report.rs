//! `sselab report`'s flags: which engines, how thorough, where the files go, and which server.

use std::path::PathBuf;

use clap::Args;

use super::LogArgs;
use crate::browser::Engine;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The engines to measure, comma-separated. One that is not installed is skipped with the
    /// reason and how to install it.
    #[arg(
        long,
        value_name = "ENGINES",
        value_enum,
        value_delimiter = ',',
        default_values_t = Engine::ALL,
        env = "SSELAB_REPORT_ENGINES"
    )]
    pub engines: Vec<Engine>,

    /// Fewer repeats and shorter waits: the core facts in about a minute per engine (one run
    /// per cell instead of three, probes blocked after 3 s instead of 5).
    #[arg(long, env = "SSELAB_REPORT_QUICK")]
    pub quick: bool,

    /// Where report.html, report.json and README-table.md go (created when missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "report",
        env = "SSELAB_REPORT_OUT"
    )]
    pub out: PathBuf,

    /// Measure a running sselab instead of starting one: its plain HTTP/1.1 listener, e.g.
    /// http://127.0.0.1:8080/ (the other listeners are read from its /lab page). The cells that
    /// need server flags of their own (the stream caps, a second site) are then skipped, saying
    /// why.
    #[arg(long, value_name = "URL", env = "SSELAB_REPORT_URL")]
    pub url: Option<String>,

    /// With --url: trust the certificate in this directory (as `sselab tabs` does).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "certs",
        requires = "url",
        env = "SSELAB_CERT_DIR"
    )]
    pub cert_dir: PathBuf,

    /// Run only these cells (comma-separated), e.g. `--only tabs-h2,reconnect`; the rest are
    /// listed as skipped. Default: every cell.
    #[arg(
        long,
        value_name = "CELLS",
        value_enum,
        value_delimiter = ',',
        env = "SSELAB_REPORT_ONLY"
    )]
    pub only: Vec<CellId>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// One measurement of the matrix, per engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum CellId {
    /// 10 tabs over plain HTTP/1.1, then the probe (a fetch and a new tab's page).
    TabsH1,
    /// The same over TLS with HTTP/1.1 only.
    TabsH1tls,
    /// The same over HTTP/2.
    TabsH2,
    /// The same over HTTP/3 (QUIC forced on for the origin).
    TabsH3,
    /// 10 tabs and the probe at the server's HTTP/2 stream cap (`--h2-max-streams 5`).
    CapH2,
    /// 10 tabs and the probe at the server's QUIC stream cap (`--h3-max-streams 5`).
    CapH3,
    /// The engine's own cap: many EventSources in one page over HTTP/2 with
    /// `--h2-max-streams 1000`.
    EngineCapH2,
    /// `?timeout=3&retry=1500`: the reconnect's delay and its Last-Event-ID.
    Reconnect,
    /// Pages of two sites, each opening streams to a third HTTP/1.1 origin (CORS).
    CrossSite,
    /// A 503 against sselab's refusal stream, on a full lab slot group.
    Refusal,
}

impl CellId {
    pub const ALL: [CellId; 10] = [
        CellId::TabsH1,
        CellId::TabsH1tls,
        CellId::TabsH2,
        CellId::TabsH3,
        CellId::CapH2,
        CellId::CapH3,
        CellId::EngineCapH2,
        CellId::Reconnect,
        CellId::CrossSite,
        CellId::Refusal,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            CellId::TabsH1 => "tabs-h1",
            CellId::TabsH1tls => "tabs-h1tls",
            CellId::TabsH2 => "tabs-h2",
            CellId::TabsH3 => "tabs-h3",
            CellId::CapH2 => "cap-h2",
            CellId::CapH3 => "cap-h3",
            CellId::EngineCapH2 => "engine-cap-h2",
            CellId::Reconnect => "reconnect",
            CellId::CrossSite => "cross-site",
            CellId::Refusal => "refusal",
        }
    }
}
