//! A browser's process, as every engine runs it: started with a fresh profile, its protocol's
//! address read from the line it prints on stderr once it listens (or, for a program that
//! prints none, found by the caller), asked to close and, when it does not, killed.
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
pub(super) const START_PATIENCE: Duration = Duration::from_secs(60);

/// How long a browser asked to close may take to exit before it is killed.
const CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// `sh -c SUPERVISOR sh PROFILE BROWSER ARGS…`: run the browser (stdin from /dev/null, the
/// pipe not inherited); a watcher kills it once our end of the pipe (fd 3) closes — and its
/// process group, when the browser leads one (started under `setsid`, as WebKitWebDriver is,
/// so the MiniBrowser it starts goes with it; for the others `-PID` names no group); when the
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
(read -r _ <&3; kill -KILL "-$browser" "$browser" 2>/dev/null) &
watcher=$!
exec 2>/dev/null
wait "$browser"
kill "$watcher" 2>/dev/null
rm -rf -- "$profile""#;

/// What a stderr line that says the program is ready gives (its address), or `None`.
pub type LineMatch<'a> = dyn Fn(&str) -> Option<String> + Sync + 'a;

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
        let found = |line: &str| line.split(banner).nth(1).map(|a| a.trim().to_string());
        let what = format!("{banner:?}");
        Self::start_until(executable, args, env, profile, &what, Some(&found)).await
    }

    /// [`start`](Self::start), but waiting for the first stderr line `found` makes something
    /// of (`what` names it in errors); with no `found`, it waits for nothing and gives `""`
    /// (a program that prints nothing once it listens: the caller asks it).
    pub async fn start_until<I, S>(
        executable: &Path,
        args: I,
        env: &[(&str, &str)],
        profile: tempfile::TempDir,
        what: &str,
        found: Option<&LineMatch<'_>>,
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
        let address = match found {
            None => String::new(),
            Some(found) => tokio::time::timeout(START_PATIENCE, async {
                while let Some(line) = lines.next_line().await? {
                    if let Some(address) = found(&line) {
                        return Ok(address);
                    }
                }
                bail!("{program} exited before printing {what}")
            })
            .await
            .with_context(|| {
                format!("{program} did not print {what} within {START_PATIENCE:?}")
            })??,
        };
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

impl BrowserProcess {
    /// Whether the process has exited (it failed to start, or died).
    pub fn exited(&mut self) -> bool {
        !matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// Kill the browser now (a program with no command that ends it) and wait until it has
    /// exited and its profile is gone.
    pub async fn kill(mut self) {
        self.lifeline = None;
        let _ = tokio::time::timeout(CLOSE_PATIENCE, self.supervisor.wait()).await;
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
