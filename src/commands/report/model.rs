//! What a report holds: per engine, per cell, every run's values, each with its unit. The
//! renderers (`json`, `markdown`, `html`) read only this.

use std::collections::BTreeMap;

use serde::Serialize;

/// One measured value and its unit (`streams`, `connections`, `ms`, `protocol`, …). A probe
/// that got no answer is the text `blocked` in `ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantity {
    pub value: serde_json::Value,
    pub unit: &'static str,
}

/// One run of a cell: its values by name, in name order.
pub type Run = BTreeMap<&'static str, Quantity>;

/// Build a [`Run`] from `(name, value, unit)` triples.
pub fn values<const N: usize>(values: [(&'static str, serde_json::Value, &'static str); N]) -> Run {
    values
        .into_iter()
        .map(|(name, value, unit)| (name, Quantity { value, unit }))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every run of the cell finished within its bound.
    Measured,
    /// The cell could not be measured: `reason` says why (an error, or its bound ran out).
    Failed,
    /// Not run because the engine cannot do what the cell measures (WebKitGTK and HTTP/3):
    /// `reason` says why. An answer, not a failure.
    Unsupported,
    /// Not run: `reason` says why (not asked for with --only, a flag a running server lacks).
    Skipped,
}

/// One cell of the matrix in one engine.
#[derive(Debug, Clone, Serialize)]
pub struct CellReport {
    /// The `--only` name, e.g. `tabs-h1`.
    pub cell: &'static str,
    /// What it measures, in words.
    pub title: &'static str,
    /// The longest the cell may take before it counts as failed.
    pub bound_s: u64,
    pub took_ms: u64,
    pub status: Status,
    pub reason: Option<String>,
    pub runs: Vec<Run>,
}

/// One engine's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    pub engine: String,
    /// `--version`'s words, when the engine is installed.
    pub version: Option<String>,
    /// Why the engine was not measured (not installed: how to install it).
    pub skipped: Option<String>,
    pub took_s: f64,
    /// Where its connection counts come from (the browser's ids, or the server's).
    pub connections_from: Option<String>,
    pub cells: Vec<CellReport>,
}

impl EngineReport {
    pub fn cell(&self, name: &str) -> Option<&CellReport> {
        self.cells.iter().find(|c| c.cell == name)
    }
}

/// Which sselab measured.
#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub version: &'static str,
    /// `git describe --always --dirty` in the working directory, when it is a checkout.
    pub commit: Option<String>,
    /// Where `commit` comes from.
    pub commit_from: &'static str,
}

/// The machine it ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: Option<usize>,
    pub memory_bytes: Option<u64>,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: Option<String>,
    pub os: &'static str,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sselab: Build,
    pub machine: Machine,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub took_s: f64,
    /// `quick` or `full`.
    pub mode: &'static str,
    /// `in-process` (servers it started on loopback ports) or the `--url` it measured.
    pub server: String,
    pub engines: Vec<EngineReport>,
}
