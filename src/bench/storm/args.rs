//! `sselab bench storm`'s flags.

use clap::Args;

use crate::bench::args::{SharedArgs, StreamArgs};

#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    #[command(flatten)]
    pub shared: SharedArgs,
    // `--streams` is the number of clients (more than the server's cap, for a storm), each
    // like one browser tab; `--ramp 0` (the default) starts them all at once.
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Seconds the clients run, from the first one's start; then each stops where it is.
    /// Make it longer than the `retry:` a refusal tells (sselab: Retry-After 5 s, spread by
    /// its --retry-jitter) so the refused clients can come back.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub duration: f64,
}
