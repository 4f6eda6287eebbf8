//! A browser's process, as both engines run it: started with a fresh profile that is deleted
//! with it, its protocol's address read from the line it prints on stderr once it listens,
//! asked to close and, when it does not, killed. Dropped, it is killed (`kill_on_drop`) and its
//! connection's task ends.

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a browser may take to start listening on a busy machine.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// How long a browser asked to close may take to exit before it is killed.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// A running browser, its profile directory and the task reading its protocol's socket.
pub struct BrowserProcess {
    child: Child,
    _profile: tempfile::TempDir,
    connection: Option<tokio::task::JoinHandle<()>>,
}

impl BrowserProcess {
    /// Run `command` (whose switches name `profile`) and wait for the stderr line containing
    /// `banner`; gives the rest of that line (the address).
    pub async fn start(
        mut command: Command,
        profile: tempfile::TempDir,
        banner: &str,
    ) -> anyhow::Result<(Self, String)> {
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let stderr = child.stderr.take().context("the browser's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let address = tokio::time::timeout(START_PATIENCE, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.split(banner).nth(1) {
                    return Ok(address.trim().to_string());
                }
            }
            bail!("{program} exited before printing {banner:?}")
        })
        .await
        .with_context(|| {
            format!("{program} did not print {banner:?} within {START_PATIENCE:?}")
        })??;
        // Keep reading, or the browser blocks once the pipe is full.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let process = Self {
            child,
            _profile: profile,
            connection: None,
        };
        Ok((process, address))
    }

    /// Keep `task` (the connection to this browser) for as long as the browser runs.
    pub fn keep(&mut self, task: tokio::task::JoinHandle<()>) {
        self.connection = Some(task);
    }

    /// Ask the browser to close with `closing` (its protocol's command), wait for it to exit,
    /// and kill it when either takes too long.
    pub async fn close(mut self, closing: impl Future) {
        let _ = tokio::time::timeout(CLOSE_PATIENCE, closing).await;
        if tokio::time::timeout(CLOSE_PATIENCE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        if let Some(task) = &self.connection {
            task.abort();
        }
    }
}
