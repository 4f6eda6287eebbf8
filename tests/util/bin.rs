//! The `sselab` binary as a person runs it: a clean environment, the start banner read up to
//! its last line (`auth: …`), SIGTERM to stop, and stderr kept in a file to read afterwards.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sselab");

/// `sselab ARGS` without any `SSELAB_*` or `RUST_LOG` from the test's own environment, and
/// with the HTTP/3 listener off unless ARGS name one: its default, UDP 127.0.0.1:8443, would
/// be shared by every test running at once.
pub fn sselab(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SSELAB_") {
            command.env_remove(name);
        }
    }
    command.env("SSELAB_H3", "off");
    command
}

/// Run to completion and give the output, failing the test after a minute.
pub fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sselab runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sselab did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A running server: its banner and where its stderr goes.
pub struct Running {
    child: Child,
    pub banner: Vec<String>,
    pub stderr: PathBuf,
}

impl Running {
    /// Start `command` (a serve) and read its banner up to the `auth:` line.
    pub fn start(command: &mut Command, dir: &Path) -> Self {
        Self::try_start(command, dir).unwrap_or_else(|failed| panic!("{failed}"))
    }

    /// [`Running::start`], or, when the server exits before its banner is out (a port in
    /// use, say), what it printed and wrote to stderr.
    pub fn try_start(command: &mut Command, dir: &Path) -> Result<Self, String> {
        let stderr = dir.join("stderr.log");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("sselab starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("banner line");
            let last = line.starts_with("auth: ");
            banner.push(line);
            if last {
                break;
            }
        }
        if !banner.last().is_some_and(|l| l.starts_with("auth: ")) {
            let _ = child.wait();
            return Err(format!(
                "the banner ends with the auth line: {banner:?}\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            ));
        }
        Ok(Self {
            child,
            banner,
            stderr,
        })
    }

    /// The address of the `listening KIND` line.
    pub fn addr(&self, kind: &str) -> SocketAddr {
        let line = self
            .banner
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} listener in {:?}", self.banner));
        let url = line.split_whitespace().nth(2).expect("url");
        let host_port = url
            .split("://")
            .nth(1)
            .expect("scheme")
            .trim_end_matches('/');
        host_port.parse().expect("host:port")
    }

    /// SIGTERM, wait for the exit, and give everything it wrote to stderr.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "sselab did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(&self.stderr).expect("stderr")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
