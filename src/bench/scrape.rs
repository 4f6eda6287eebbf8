//! The server's own view, from its Prometheus endpoint (`--server-metrics`): RSS before the
//! streams open and with them open, and CPU seconds over the run.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;

use super::args::BenchArgs;
use crate::client::get_body;

/// `name → value` of a Prometheus text endpoint's unlabelled samples.
pub(super) type Metrics = BTreeMap<String, f64>;

/// The three scrapes of a run; each is `None` without `--server-metrics` (or, after the
/// first, when it failed: by then the run is worth reporting anyway).
pub(super) struct ServerMetrics {
    pub before: Option<Metrics>,
    pub with_streams: Option<Metrics>,
    pub after_run: Option<Metrics>,
}

impl ServerMetrics {
    pub fn rss_before(&self) -> Option<u64> {
        sample(&self.before, "process_resident_memory_bytes").map(|v| v as u64)
    }

    pub fn rss_with_streams(&self) -> Option<u64> {
        sample(&self.with_streams, "process_resident_memory_bytes").map(|v| v as u64)
    }

    /// CPU seconds the server spent from before the streams opened to after they stopped.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let cpu = |metrics| sample(metrics, "process_cpu_seconds_total");
        Some(cpu(&self.after_run)? - cpu(&self.before)?)
    }
}

pub(super) fn sample(metrics: &Option<Metrics>, name: &str) -> Option<f64> {
    metrics.as_ref()?.get(name).copied()
}

/// Scrape `--server-metrics`, if given.
pub(super) async fn server_metrics(
    args: &BenchArgs,
    timeout: Duration,
) -> anyhow::Result<Option<Metrics>> {
    match &args.server_metrics {
        Some(url) => Ok(Some(scrape(url, args, timeout).await?)),
        None => Ok(None),
    }
}

/// Read a Prometheus text endpoint into `name → value` (unlabelled samples only).
async fn scrape(url: &str, args: &BenchArgs, timeout: Duration) -> anyhow::Result<Metrics> {
    let body = get_body(url, args.cacert.as_deref(), args.insecure, timeout)
        .await
        .context("--server-metrics")?;
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.contains('{'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect())
}
