//! The `sselab` binary as a person runs it: a clean environment, the start banner read up to
//! its last line (`auth: …`), SIGTERM to stop, and stderr kept in a file to read afterwards.
//! Every wait is bounded by [`PATIENCE`]: a binary that hangs fails its test, not the suite.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::PATIENCE;

pub const BIN: &str = env!("CARGO_BIN_EXE_sselab");

/// `sselab ARGS` without any `SSELAB_*` or `RUST_LOG` from the test's own environment, with
/// every TCP listener on a free port and the HTTP/3 listener off unless ARGS name them: the
/// defaults (8080, 8443, 8444, UDP 8443) would be shared by every test running at once, and
/// by anything else on the machine.
pub fn sselab(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SSELAB_") {
            command.env_remove(name);
        }
    }
    for listener in ["SSELAB_HTTP", "SSELAB_HTTPS", "SSELAB_HTTPS_H1"] {
        command.env(listener, "127.0.0.1:0");
    }
    command.env("SSELAB_H3", "off");
    command
}

/// Run to completion and give the output, failing the test after [`PATIENCE`].
pub fn run(command: &mut Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sselab runs");
    let pid = child.id().to_string();
    // Waited for on a thread of its own, which also reads both pipes (a chatty child cannot
    // block on a full one), so the wait can have a deadline.
    let (finished, output) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = finished.send(child.wait_with_output());
    });
    match output.recv_timeout(PATIENCE) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            // Not reaped yet (its thread still waits), so the pid is still this child's.
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("sselab did not finish within {PATIENCE:?}");
        }
    }
}

/// How a server stopped by [`Running::terminate`] ended.
pub struct Exit {
    pub status: ExitStatus,
    /// From the SIGTERM to the exit.
    pub took: Duration,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// A running server: its banner and where its stderr goes.
pub struct Running {
    child: Child,
    pub banner: Vec<String>,
    pub stderr: PathBuf,
}

impl Running {
    /// Start `command` (a serve) and read its banner up to the `auth:` line, failing the test
    /// if that takes longer than [`PATIENCE`].
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
        // Read on a thread of its own, so the wait can have a deadline; the thread reads on to
        // the end, so nothing printed later can block the server on a full pipe.
        let stdout = child.stdout.take().expect("stdout");
        let (lines, banner_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let mut banner = Vec::new();
        while !banner
            .last()
            .is_some_and(|l: &String| l.starts_with("auth: "))
        {
            let wait = deadline.saturating_duration_since(Instant::now());
            match banner_lines.recv_timeout(wait) {
                Ok(line) => banner.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // It exited before its banner was out.
                    let _ = child.wait();
                    return Err(format!(
                        "sselab exited before the `auth:` line: {banner:?}\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    ));
                }
                Err(why) => {
                    let _ = child.kill();
                    panic!(
                        "no `auth:` line ending the banner ({why}): {banner:?}\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            }
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

    /// SIGTERM, wait for the exit (at most [`PATIENCE`]), and give everything it wrote to
    /// stderr.
    pub fn stop(self) -> String {
        self.terminate().stderr
    }

    /// SIGTERM and wait for the exit, at most [`PATIENCE`]: how it exited, and how soon.
    pub fn terminate(mut self) -> Exit {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let signalled = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                signalled.elapsed() < PATIENCE,
                "sselab did not stop within {PATIENCE:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Exit {
            status,
            took: signalled.elapsed(),
            stderr: std::fs::read_to_string(&self.stderr).expect("stderr"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
