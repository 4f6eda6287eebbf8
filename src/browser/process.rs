//! A browser's process, as both engines run it: started with a fresh profile, its protocol's
//! address read from the line it prints on stderr once it listens, asked to close and, when it
//! does not, killed.
//!
//! The browser runs under a small `sh` supervisor that holds the read end of a pipe from us:
//! when that pipe closes — this handle dropped, or sselab gone for any reason, even killed —
//! the supervisor kills the browser and deletes its profile. So no browser outlives the process
//! that started it, even one that never runs its destructors (a browser shared by a whole test
//! binary, kept in a `static`).

use std::ffi::OsStr;
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long a browser may take to start listening on a busy machine.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// How long a browser asked to close may take to exit before it is killed.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// `sh -c SUPERVISOR sh PROFILE BROWSER ARGS…`: run the browser (stdin from /dev/null, the
/// pipe not inherited); a watcher kills it once our end of the pipe (fd 3) closes; when the
/// browser has exited, for whatever reason, stop the watcher and delete the profile. The
/// browser's temporary files go inside the profile too (`TMPDIR`), so a killed one leaves
/// nothing behind. The shell's own stderr goes to /dev/null once the browser has it: with
/// sselab gone, the shell reporting the killed browser there would die of SIGPIPE before
/// deleting the profile.
const SUPERVISOR: &str = r#"profile=$1; shift
export TMPDIR="$profile/tmp"
mkdir -p "$TMPDIR"
exec 3<&0
"$@" </dev/null 3<&- &
browser=$!
(read -r _ <&3; kill -KILL "$browser" 2>/dev/null) &
watcher=$!
exec 2>/dev/null
wait "$browser"
kill "$watcher" 2>/dev/null
rm -rf -- "$profile""#;

/// A running browser (under its supervisor) and the task reading its protocol's socket.
pub struct BrowserProcess {
    supervisor: Child,
    /// Our end of the supervisor's pipe: closing it kills the browser.
    lifeline: Option<ChildStdin>,
    connection: Option<tokio::task::JoinHandle<()>>,
}

impl BrowserProcess {
    /// Run `executable` with `args` (which name `profile`; the supervisor deletes it once the
    /// browser exits) and `env`, and wait for the stderr line containing `banner`; gives the
    /// rest of that line (the address).
    pub async fn start<I, S>(
        executable: &Path,
        args: I,
        env: &[(&str, &str)],
        profile: tempfile::TempDir,
        banner: &str,
    ) -> anyhow::Result<(Self, String)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = executable.display().to_string();
        // From here on the supervisor deletes the profile, not this process.
        let profile = profile.keep();
        let mut supervisor = Command::new("/bin/sh")
            .args(["-c", SUPERVISOR, "sh"])
            .arg(&profile)
            .arg(executable)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program} under /bin/sh"))?;
        let lifeline = supervisor.stdin.take();
        let stderr = supervisor.stderr.take().context("the browser's stderr")?;
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
            supervisor,
            lifeline,
            connection: None,
        };
        Ok((process, address))
    }

    /// Keep `task` (the connection to this browser) for as long as the browser runs.
    pub fn keep(&mut self, task: tokio::task::JoinHandle<()>) {
        self.connection = Some(task);
    }

    /// Ask the browser to close with `closing` (its protocol's command) and wait until it has
    /// exited and its profile is gone; kill it when it takes too long.
    pub async fn close(mut self, closing: impl Future) {
        let _ = tokio::time::timeout(CLOSE_PATIENCE, closing).await;
        if tokio::time::timeout(CLOSE_PATIENCE, self.supervisor.wait())
            .await
            .is_err()
        {
            self.lifeline = None;
            let _ = tokio::time::timeout(CLOSE_PATIENCE, self.supervisor.wait()).await;
        }
    }
}

impl Drop for BrowserProcess {
    /// Dropping the lifeline (a field) kills the browser; the connection's task ends here.
    fn drop(&mut self) {
        if let Some(task) = &self.connection {
            task.abort();
        }
    }
}
