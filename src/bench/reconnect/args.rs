//! `sselab bench reconnect`'s flags.

use clap::Args;

use crate::bench::args::{SharedArgs, StreamArgs};

#[derive(Debug, Clone, Args)]
pub struct ReconnectArgs {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Seconds for the whole wait, from the streams being open to the last reconnect: the
    /// server has this long to end them (restart it meanwhile; `scripts/bench.sh reconnect`
    /// does) and they to come back.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
}
