//! `sselab bench`: a load generator for any SSE server, on hyper's HTTP/1.1 and HTTP/2
//! clients and h3's HTTP/3 one, in three modes, each a subcommand with only its own flags:
//!
//! - [`load`]: N streams over C connections, optionally fan-out with delivery latency, lost
//!   and duplicated events, and the server's RSS per stream.
//! - [`reconnect`]: the restart mode. The streams are read until the server ends them,
//!   reconnect like browsers after the `retry:` they were told, and the report shows when
//!   they came back (a storm, or a spread).
//! - [`storm`]: more clients than the server's cap, each an EventSource for the whole run;
//!   the report shows when refused clients came back after the `retry:` their refusal told
//!   (all at once, or spread by the server's jitter).
//! - [`attack`]: a misbehaving client against a server on this machine, with a control
//!   client timing what a normal one still gets.
//!
//! Beside them, what more than one mode uses: `args` (the flags they share, checked into a
//! plan), `request` (one bench request, and how a refusal stream is told from a stream),
//! `event_source` (the browser-like client `reconnect` and `storm` share), `percentiles`
//! (how distributions are reported) and `scrape` (the server's Prometheus view, and the
//! figures it could not give, with why).
//!
//! Every mode asks for `text/event-stream`, as a browser does, so it meets what a browser
//! meets: from sselab, a refusal a later try can pass is a `200` refusal stream, which each
//! mode counts as refused (never as an open stream).
//! Every run is bounded in time and stays on loopback unless told otherwise.

mod args;
pub mod attack;
mod event_source;
pub mod load;
mod percentiles;
pub mod reconnect;
mod request;
mod scrape;
pub mod storm;

use clap::Subcommand;

pub use crate::client::Proto;
pub use args::{SharedArgs, StreamArgs};
pub use attack::AttackArgs;
pub use load::{LoadArgs, PublishReport, Report};
pub use percentiles::{Bucket, Percentiles, Spread};
pub use reconnect::{ReconnectArgs, ReconnectReport};
pub use scrape::NotMeasured;
pub use storm::{StormArgs, StormReport};

/// `sselab bench MODE`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// N streams over HTTP/1.1, HTTP/2 or HTTP/3; optional fan-out with delivery latency,
    /// lost/duplicated events, and the server's RSS per stream.
    Load(LoadArgs),
    /// Read the streams until the server ends them (restart it meanwhile), reconnect each
    /// like EventSource after the last `retry:` it got, and print when the reconnects were
    /// answered.
    Reconnect(ReconnectArgs),
    /// A refusal storm: more clients than the server's cap, each reconnecting like
    /// EventSource after every end and every refusal stream; print when refused clients came
    /// back after the `retry:` they were told.
    Storm(StormArgs),
    /// Attack a server on this machine (rapid-reset, slowloris, continuation) while a control
    /// client times its first event.
    Attack(AttackArgs),
}

impl BenchCommand {
    /// The flags every mode takes.
    pub fn shared(&self) -> &SharedArgs {
        match self {
            Self::Load(args) => &args.shared,
            Self::Reconnect(args) => &args.shared,
            Self::Storm(args) => &args.shared,
            Self::Attack(args) => &args.shared,
        }
    }
}
