//! `sselab bench MODE FLAGS`, parsed as the command line would, for the tests that run a mode
//! in-process.

use clap::Parser as _;
use sselab::bench::{AttackArgs, BenchCommand, LoadArgs, ReconnectArgs, StormArgs};
use sselab::{Cli, Command};

/// `sselab bench ARGS`, or clap's error.
pub fn parse(args: &[&str]) -> Result<BenchCommand, clap::Error> {
    let argv = ["sselab", "bench"].iter().chain(args.iter());
    match Cli::try_parse_from(argv)?.into_command() {
        Command::Bench(mode) => Ok(mode),
        other => panic!("expected bench, got {other:?}"),
    }
}

fn parsed(mode: &str, args: &[&str]) -> BenchCommand {
    let argv: Vec<&str> = std::iter::once(mode).chain(args.iter().copied()).collect();
    parse(&argv).unwrap_or_else(|e| panic!("bench {mode} flags parse: {e}"))
}

/// `sselab bench load ARGS`.
pub fn load(args: &[&str]) -> LoadArgs {
    match parsed("load", args) {
        BenchCommand::Load(args) => args,
        other => panic!("expected load, got {other:?}"),
    }
}

/// `sselab bench reconnect ARGS`.
pub fn reconnect(args: &[&str]) -> ReconnectArgs {
    match parsed("reconnect", args) {
        BenchCommand::Reconnect(args) => args,
        other => panic!("expected reconnect, got {other:?}"),
    }
}

/// `sselab bench storm ARGS`.
pub fn storm(args: &[&str]) -> StormArgs {
    match parsed("storm", args) {
        BenchCommand::Storm(args) => args,
        other => panic!("expected storm, got {other:?}"),
    }
}

/// `sselab bench attack ARGS` (the kind first).
pub fn attack(args: &[&str]) -> AttackArgs {
    match parsed("attack", args) {
        BenchCommand::Attack(args) => args,
        other => panic!("expected attack, got {other:?}"),
    }
}

/// A Prometheus endpoint that answers its first request with `page`, then accepts every later
/// connection and closes it at once: a server whose metrics went away during a run. The
/// listener is bound here and held by its task, so no other process can take the port.
pub async fn metrics_that_answer_once(page: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a metrics port");
    let url = format!("http://{}/metrics", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut answered = false;
        while let Ok((mut tcp, _)) = listener.accept().await {
            if answered {
                continue; // dropped: closed before any answer
            }
            answered = true;
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
        }
    });
    url
}
