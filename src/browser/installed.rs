//! Which engines this machine has, and their exact versions: the one place that names each
//! engine's executable and the command that tells its version, so a report can say what it
//! measured. A new engine adds its arm to `version_command` (and its `find_*` function).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{Engine, chromium, firefox, webkit};

/// How long asking for a version may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// WebKitGTK's and libsoup's upstream versions, from Debian's packages.
const WEBKIT_VERSION: &str = "webkit=$(dpkg-query --show --showformat='${source:Upstream-Version}' \
    libwebkit2gtk-4.1-0) && soup=$(dpkg-query --show --showformat='${source:Upstream-Version}' \
    libsoup-3.0-0) && printf 'WebKitGTK %s (libsoup %s)' \"$webkit\" \"$soup\"";

/// The engine's executable (for WebKit its driver, once MiniBrowser and Xvfb are there too),
/// or why it is missing and how to install it.
pub fn executable(engine: Engine) -> anyhow::Result<PathBuf> {
    match engine {
        Engine::Chromium => chromium::find_chromium(),
        Engine::Firefox => firefox::find_firefox(),
        Engine::Webkit => {
            webkit::find_minibrowser()?;
            webkit::find_xvfb()?;
            webkit::find_driver()
        }
    }
}

/// The program that says which version of `engine` runs, and its arguments.
fn version_command(engine: Engine) -> anyhow::Result<(PathBuf, &'static [&'static str])> {
    let executable = executable(engine)?;
    Ok(match engine {
        // `Chromium 156.0.8078.129 built on Debian GNU/Linux 12 (bookworm)`
        Engine::Chromium => (executable, &["--version"]),
        // `Mozilla Firefox 153.8.0esr`
        Engine::Firefox => (executable, &["--version"]),
        // Neither WebKitWebDriver nor MiniBrowser prints a version, and libsoup's (the network
        // code the lab measures) is a version of its own: Debian's packages say both,
        // `WebKitGTK 2.50.6 (libsoup 3.2.3)`.
        Engine::Webkit => (PathBuf::from("sh"), &["-c", WEBKIT_VERSION]),
    })
}

/// The engine's own words for its version, trimmed (the command `version_command` names).
pub async fn version(engine: Engine) -> anyhow::Result<String> {
    let (program, args) = version_command(engine)?;
    let run = tokio::process::Command::new(&program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let shown = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .with_context(|| format!("{shown} did not answer"))?
        .with_context(|| format!("running {shown}"))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(
        output.status.success() && !text.is_empty(),
        "{shown}: {} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(text)
}
