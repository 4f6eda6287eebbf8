//! Which engines this machine has, and their exact versions: the one place that names each
//! engine's executable and how it tells its version, so a report can say what it measured.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{Engine, chromium, firefox};

/// How long `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// The engine's executable, or why it is missing and how to install it.
pub fn executable(engine: Engine) -> anyhow::Result<PathBuf> {
    match engine {
        Engine::Chromium => chromium::find_chromium(),
        Engine::Firefox => firefox::find_firefox(),
    }
}

/// The engine's own words for its version (`chromium --version`, `firefox-esr --version`),
/// trimmed: e.g. `Chromium 156.0.8078.114 built on Debian …`, `Mozilla Firefox 153.8.0esr`.
pub async fn version(engine: Engine) -> anyhow::Result<String> {
    let program = executable(engine)?;
    let run = tokio::process::Command::new(&program)
        .arg("--version")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(VERSION_TIMEOUT, run)
        .await
        .with_context(|| format!("{} --version did not answer", program.display()))?
        .with_context(|| format!("running {} --version", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(
        output.status.success() && !text.is_empty(),
        "{} --version: {} {}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(text)
}
