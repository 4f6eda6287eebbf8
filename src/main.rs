//! The `sselab` binary: parse flags, set up tracing, call the library.

use std::process::ExitCode;

use clap::Parser;
use sselab::{Cli, Command, commands};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    let default_level = match command.verbosity() {
        // The report's own servers would drown its progress in their stream lines (and log
        // each 503 it provokes as an error): only warnings, and none from the HTTP layer.
        0 if matches!(command, Command::Report(_)) => "warn,sselab::http=off",
        0 => "sselab=info,warn",
        1 => "sselab=debug,tower_http=debug,info",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sselab: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Serve(args) => runtime.block_on(commands::serve(args)),
        Command::Cert(args) => commands::cert(&args.cert),
        Command::Tabs(args) => runtime.block_on(commands::tabs(args)),
        Command::Shot(args) => runtime.block_on(commands::shot(args)),
        Command::Bench(args) => runtime.block_on(commands::bench(args)),
        Command::Token(args) => commands::token(&args),
        Command::Report(args) => runtime.block_on(commands::report(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sselab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
