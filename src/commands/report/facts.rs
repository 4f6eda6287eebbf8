//! The report's facts as the README's browser table has them: one row per fact, a column per
//! engine, each cell the measured values as `name=value` (a range or every value when the runs
//! differ). The Markdown table and the HTML report's table both read these rows.

use super::model::{CellReport, EngineReport, Quantity, Status};

/// One row: a fact, the cell that measures it, and which of its values say it.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub fact: &'static str,
    pub cell: &'static str,
    pub keys: &'static [&'static str],
}

const TABS: &[&str] = &[
    "open",
    "pending",
    "protocol",
    "connections",
    "server_streams",
];
const PROBE: &[&str] = &["probe_fetch", "probe_nav"];

/// The README's rows that the report measures, then the two it adds (the engine's own HTTP/2
/// stream cap, cross-site sharing).
pub const ROWS: &[Row] = &[
    row("10 tabs, plain HTTP/1.1", "tabs-h1", TABS),
    row("10 tabs, TLS + HTTP/1.1 only", "tabs-h1tls", TABS),
    row("10 tabs, HTTP/2", "tabs-h2", TABS),
    row("`--h2-max-streams 5`", "cap-h2", TABS),
    row("probe beside 10 HTTP/1.1 streams", "tabs-h1", PROBE),
    row("probe beside 10 TLS HTTP/1.1 streams", "tabs-h1tls", PROBE),
    row("probe beside 10 HTTP/2 streams", "tabs-h2", PROBE),
    row("probe at the server's HTTP/2 stream limit", "cap-h2", PROBE),
    row("10 tabs, HTTP/3", "tabs-h3", TABS),
    row("`--h3-max-streams 5`", "cap-h3", TABS),
    row("probe beside 10 HTTP/3 streams", "tabs-h3", PROBE),
    row("probe at the server's QUIC stream limit", "cap-h3", PROBE),
    row(
        "`?timeout=3&retry=1500`",
        "reconnect",
        &[
            "reconnect_ms",
            "last_event_id",
            "continued_after_it",
            "gaps",
        ],
    ),
    row(
        "what a 503 does to an EventSource",
        "refusal",
        &["status_ready_state", "status_events", "status_opens"],
    ),
    row(
        "the refusal stream instead (a full slot group)",
        "refusal",
        &[
            "stream_ready_state",
            "stream_refusals",
            "stream_ticking_after_ms",
        ],
    ),
    row(
        "the engine's own cap on streams per HTTP/2 connection (`--h2-max-streams 1000`, 300 EventSources in one page)",
        "engine-cap-h2",
        &["own_cap", "open", "connecting", "connections"],
    ),
    row(
        "two sites' tabs, 8 streams each to one third HTTP/1.1 host (CORS): one pool of 6, or one per site?",
        "cross-site",
        &["first_site_open", "second_site_open", "connections", "pool"],
    ),
];

const fn row(fact: &'static str, cell: &'static str, keys: &'static [&'static str]) -> Row {
    Row { fact, cell, keys }
}

/// A column's heading: the engine's version words up to its version number, e.g.
/// `Chromium 156.0.8078.114` of `Chromium 156.0.8078.114 built on Debian …`.
pub fn column(engine: &EngineReport) -> String {
    let Some(version) = &engine.version else {
        return engine.engine.clone();
    };
    let mut words = Vec::new();
    for word in version.split_whitespace() {
        words.push(word);
        if word.chars().any(|c| c.is_ascii_digit()) {
            break;
        }
    }
    words.join(" ")
}

/// What one engine's column says for `row`.
pub fn entry(engine: &EngineReport, row: &Row) -> Entry {
    if let Some(why) = &engine.skipped {
        return Entry::Missing(format!("not measured: {why}"));
    }
    match engine.cell(row.cell) {
        None => Entry::Missing("not measured".into()),
        Some(cell) => entry_of(cell, row.keys),
    }
}

/// A table entry: values, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `name=value …`, and how many runs it sums up.
    Values {
        line: String,
        runs: usize,
    },
    Failed(String),
    Missing(String),
}

impl Entry {
    /// As plain text: `open=6 pending=4 …, 3 runs`, `failed: …`.
    pub fn text(&self) -> String {
        match self {
            Entry::Values { line, runs: 1 } => line.clone(),
            Entry::Values { line, runs } => format!("{line} ({runs} runs)"),
            Entry::Failed(why) => format!("failed: {why}"),
            Entry::Missing(why) => why.clone(),
        }
    }
}

fn entry_of(cell: &CellReport, keys: &[&str]) -> Entry {
    match cell.status {
        Status::Failed => Entry::Failed(one_line(cell.reason.as_deref().unwrap_or("no reason"))),
        Status::Unsupported => Entry::Missing(format!(
            "unsupported: {}",
            one_line(cell.reason.as_deref().unwrap_or("no reason"))
        )),
        Status::Skipped => Entry::Missing(format!(
            "skipped: {}",
            one_line(cell.reason.as_deref().unwrap_or("no reason"))
        )),
        Status::Measured => Entry::Values {
            line: keys
                .iter()
                .map(|key| format!("{key}={}", across_runs(cell, key)))
                .collect::<Vec<_>>()
                .join(" "),
            runs: cell.runs.len(),
        },
    }
}

/// One value over every run: the value when they agree; a range of milliseconds; else each
/// run's, in order, joined by `/`.
fn across_runs(cell: &CellReport, key: &str) -> String {
    let quantities: Vec<&Quantity> = cell.runs.iter().filter_map(|r| r.get(key)).collect();
    let Some(first) = quantities.first() else {
        return "-".into();
    };
    if quantities.iter().all(|q| q.value == first.value) {
        return shown(first);
    }
    let millis: Option<Vec<u64>> = quantities.iter().map(|q| q.value.as_u64()).collect();
    match millis {
        Some(ms) if first.unit == "ms" => {
            let (low, high) = (ms.iter().min(), ms.iter().max());
            format!("{}–{}ms", low.unwrap_or(&0), high.unwrap_or(&0))
        }
        _ => quantities
            .iter()
            .map(|q| shown(q))
            .collect::<Vec<_>>()
            .join("/"),
    }
}

/// A value as the README writes it: `21ms`, `blocked`, `h2`, `6`.
pub fn shown(quantity: &Quantity) -> String {
    match &quantity.value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(n) if quantity.unit == "ms" => format!("{n}ms"),
        other => other.to_string(),
    }
}

/// A reason on one line, short enough for a table.
pub fn one_line(reason: &str) -> String {
    /// Longer reasons are cut here; the JSON has them whole.
    const MOST: usize = 200;
    let line: String = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MOST) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}
