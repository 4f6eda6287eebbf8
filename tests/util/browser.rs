//! Helpers for the real-browser tests: start Chromium trusting the test server's certificate,
//! and wait for a condition in a page.

use std::time::{Duration, Instant};

use sselab::browser::{LabBrowser, eval};

use super::{PATIENCE, TestServer};

/// One Chromium at a time in a test binary: they are heavy on a 2-core machine, and their
/// timings matter. (Between binaries, `flock /tmp/sselab-chromium.lock cargo test ...`.)
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Headless Chromium trusting `server`'s certificate; a missing Chromium fails with how to get it.
pub async fn launch(server: &TestServer) -> LabBrowser {
    LabBrowser::launch(Some(&server.spki))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Poll `expression` in the page until it is truthy; panics after [`PATIENCE`].
pub async fn until(page: &chromiumoxide::Page, expression: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if eval::<bool>(page, &format!("!!({expression})"))
            .await
            .unwrap_or(false)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expression}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
