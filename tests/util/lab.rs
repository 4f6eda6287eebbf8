//! Driving `/lab` in a browser tab: start a run, and read each run's facts from its section's
//! data attributes (`data-open`, `data-protocol`, `data-probe-fetch`, …: see lab.js), the
//! values the page shows rather than its wording; start a remedy run, and read its summary
//! (`window.remedyRuns`: see remedies.js).

use std::time::{Duration, Instant};

use serde_json::Value;
use sselab::browser::{Tab, eval};

use super::PATIENCE;

/// Start a run of `streams` streams against `target`, probing its origin with a timeout of
/// `probe_secs` once they settle.
pub async fn start_run(lab: &Tab, target: &str, streams: usize, probe_secs: u64) {
    let start = format!(
        "document.getElementById('target').value = '{target}'; \
         document.getElementById('streams').value = '{streams}'; \
         document.getElementById('probe-timeout').value = '{probe_secs}'; \
         document.getElementById('start').click(); true"
    );
    lab.evaluate(&start).await.expect("start a run");
}

/// Every run's data attributes (`data-run` is `run`), newest first.
pub async fn runs(lab: &Tab) -> Vec<Value> {
    eval(
        lab,
        "[...document.querySelectorAll('section.run')].map(s => ({ ...s.dataset }))",
    )
    .await
    .expect("the runs' data")
}

/// The data attributes of the run against `target`, once `holds` is true of them; fails
/// after [`PATIENCE`] showing what it read last.
pub async fn until_run(lab: &Tab, target: &str, holds: impl Fn(&Value) -> bool) -> Value {
    let matches = |run: &Value| run["run"] == target && holds(run);
    let seen = until_runs(lab, |runs| runs.iter().any(&matches)).await;
    seen.into_iter().find(|run| matches(run)).expect("the run")
}

/// Every run's data attributes, once `holds` is true of them; fails after [`PATIENCE`]
/// showing what it read last.
pub async fn until_runs(lab: &Tab, holds: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = runs(lab).await;
        if holds(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the runs never got there: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A data attribute that holds a number.
pub fn number(run: &Value, name: &str) -> u64 {
    run[name]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in data-{name}: {run}"))
}

/// The Chromium command an `h3` run shows when the browser did not use QUIC (`None`: it shows
/// none).
pub async fn quic_command(lab: &Tab, target: &str) -> Option<String> {
    let script = format!(
        "document.querySelector('section.run[data-run=\"{target}\"] .quic-command')?.textContent ?? null"
    );
    eval(lab, &script).await.expect("the command")
}

/// Set the /lab remedies form (`count` tabs or feeds) and start a run.
pub async fn start_remedy(lab: &Tab, target: &str, remedy: &str, count: usize) {
    let start = format!(
        "document.getElementById('remedy-target').value = '{target}'; \
         document.getElementById('remedy').value = '{remedy}'; \
         document.getElementById('remedy-tabs').value = '{count}'; \
         document.getElementById('remedy-start').click(); true"
    );
    lab.evaluate(&start).await.expect("start a remedy run");
}

/// The newest remedy run's facts, as a script.
pub const SUMMARY: &str = "window.remedyRuns.at(-1).summary()";
