//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched):
//! where and what was measured, the facts table, charts, and every cell's runs.

use super::facts::{self, ROWS};
use super::markdown::machine;
use super::model::{EngineReport, Quantity, Report, Status};
use super::svg::{self, Bar, Segment};

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1f2328}\
table{border-collapse:collapse;margin:1rem 0;width:100%}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font:12px ui-monospace,monospace}.failed{color:#cf222e}.skipped{color:#6e7781}\
svg text{font:12px system-ui,sans-serif}svg .axis{fill:#6e7781}.open{fill:#1a7f37}.pending{fill:#d0d7de}\
.fetch{fill:#0969da}.nav{fill:#8250df}.blocked{fill:#cf222e}.delay{fill:#bf8700}figure{margin:1rem 0}";

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>sselab report {date}</title><style>{STYLE}</style></head><body>\n\
         <h1>sselab report</h1>\n",
        date = escape(&report.started_at)
    );
    page.push_str(&about(report));
    page.push_str("<h2>The browser table</h2>\n");
    page.push_str(&facts_table(report));
    page.push_str("<h2>Charts</h2>\n");
    page.push_str(&charts(report));
    for engine in &report.engines {
        page.push_str(&engine_section(engine));
    }
    page.push_str("</body></html>\n");
    page
}

/// Escape text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn about(report: &Report) -> String {
    let build = &report.sselab;
    let mut rows = vec![
        ("started", report.started_at.clone()),
        (
            "mode",
            format!("{} ({:.0} s in all)", report.mode, report.took_s),
        ),
        ("server", report.server.clone()),
        (
            "sselab",
            format!(
                "{} at {} ({})",
                build.version,
                build.commit.as_deref().unwrap_or("an unknown commit"),
                build.commit_from
            ),
        ),
        ("machine", machine(report)),
    ];
    for engine in &report.engines {
        let state = match (&engine.version, &engine.skipped) {
            (_, Some(why)) => format!("skipped: {why}"),
            (Some(version), None) => format!(
                "{version}; {:.0} s; connections from {}",
                engine.took_s,
                engine.connections_from.as_deref().unwrap_or("-")
            ),
            (None, None) => "version unknown".into(),
        };
        rows.push(("engine", format!("{}: {state}", engine.engine)));
    }
    let body: String = rows
        .iter()
        .map(|(what, value)| format!("<tr><th>{what}</th><td>{}</td></tr>\n", escape(value)))
        .collect();
    format!("<table>\n{body}</table>\n")
}

fn facts_table(report: &Report) -> String {
    let head: String = report
        .engines
        .iter()
        .map(|e| format!("<th>{}</th>", escape(&facts::column(e))))
        .collect();
    let mut table = format!("<table><tr><th>row</th>{head}</tr>\n");
    for row in ROWS {
        let cells: String = report
            .engines
            .iter()
            .map(|engine| {
                let entry = facts::entry(engine, row);
                let class = match entry {
                    facts::Entry::Values { .. } => "",
                    facts::Entry::Failed(_) => " class=\"failed\"",
                    facts::Entry::Missing(_) => " class=\"skipped\"",
                };
                format!("<td{class}><code>{}</code></td>", escape(&entry.text()))
            })
            .collect();
        table.push_str(&format!(
            "<tr><td>{}</td>{cells}</tr>\n",
            escape(&row.fact.replace('`', ""))
        ));
    }
    table.push_str("</table>\n");
    table
}

/// The cells of tabs and probes, in table order.
const TAB_CELLS: [&str; 6] = [
    "tabs-h1",
    "tabs-h1tls",
    "tabs-h2",
    "tabs-h3",
    "cap-h2",
    "cap-h3",
];

fn charts(report: &Report) -> String {
    let mut streams = Vec::new();
    let mut probes = Vec::new();
    let mut probe_max: f64 = 1.0;
    for cell in TAB_CELLS {
        for engine in &report.engines {
            let Some(first) = engine.cell(cell).and_then(|c| c.runs.first()) else {
                continue;
            };
            let label = format!("{} {cell}", engine.engine);
            let number = |key: &str| first.get(key).and_then(|q| q.value.as_f64()).unwrap_or(0.0);
            streams.push(Bar {
                label: label.clone(),
                segments: vec![
                    segment(number("open"), "open", format!("{} open", number("open"))),
                    segment(
                        number("pending"),
                        "pending",
                        format!("{} waiting", number("pending")),
                    ),
                ],
            });
            let timeout = number("probe_timeout");
            probe_max = probe_max.max(timeout);
            for (key, class) in [("probe_fetch", "fetch"), ("probe_nav", "nav")] {
                if let Some(probe) = first.get(key) {
                    probes.push(probe_bar(&label, key, probe, class, timeout));
                }
            }
        }
    }
    let mut delays = Vec::new();
    let mut caps = Vec::new();
    for engine in &report.engines {
        if let Some(cell) = engine.cell("reconnect") {
            for (n, run) in cell.runs.iter().enumerate() {
                if let Some(ms) = run.get("reconnect_ms").and_then(|q| q.value.as_f64()) {
                    let id = run
                        .get("last_event_id")
                        .map(facts::shown)
                        .unwrap_or_default();
                    delays.push(Bar {
                        label: format!("{} run {}", engine.engine, n + 1),
                        segments: vec![segment(
                            ms,
                            "delay",
                            format!("{ms} ms, Last-Event-ID {id}"),
                        )],
                    });
                }
            }
        }
        if let Some(run) = engine.cell("engine-cap-h2").and_then(|c| c.runs.first()) {
            let number = |key: &str| run.get(key).and_then(|q| q.value.as_f64()).unwrap_or(0.0);
            caps.push(Bar {
                label: engine.engine.clone(),
                segments: vec![
                    segment(
                        number("open"),
                        "open",
                        format!(
                            "{} open on {} connection(s)",
                            number("open"),
                            number("connections")
                        ),
                    ),
                    segment(
                        number("connecting"),
                        "pending",
                        format!("{} waiting", number("connecting")),
                    ),
                ],
            });
        }
    }
    let mut out = String::new();
    if !streams.is_empty() {
        out.push_str(&svg::bars(
            "10 tabs: streams open and waiting",
            "tabs",
            10.0,
            &streams,
        ));
        out.push_str(&svg::bars(
            "the probe beside them: a fetch and a new tab's page (red: blocked at the timeout)",
            "ms",
            probe_max,
            &probes,
        ));
    }
    if !delays.is_empty() {
        out.push_str(&svg::bars(
            "reconnect after ?timeout=3&retry=1500",
            "ms",
            3000.0,
            &delays,
        ));
    }
    if !caps.is_empty() {
        out.push_str(&svg::bars(
            "300 EventSources in one page over HTTP/2 (server allows 1000 per connection)",
            "streams",
            300.0,
            &caps,
        ));
    }
    out
}

fn segment(value: f64, class: &'static str, text: String) -> Segment {
    Segment { value, class, text }
}

/// A probe's bar: its milliseconds, or the whole timeout in red when it was blocked.
fn probe_bar(label: &str, key: &str, probe: &Quantity, class: &'static str, timeout: f64) -> Bar {
    let what = key.trim_start_matches("probe_");
    let segment = match probe.value.as_f64() {
        Some(ms) => segment(ms, class, format!("{what} {ms} ms")),
        None => segment(
            timeout,
            "blocked",
            format!("{what} {}", facts::shown(probe)),
        ),
    };
    Bar {
        label: format!("{label} {what}"),
        segments: vec![segment],
    }
}

fn engine_section(engine: &EngineReport) -> String {
    let mut out = format!(
        "<h2>{}</h2>\n<p>{}</p>\n",
        escape(&engine.engine),
        escape(
            engine
                .version
                .as_deref()
                .or(engine.skipped.as_deref())
                .unwrap_or("")
        )
    );
    if engine.cells.is_empty() {
        return out;
    }
    out.push_str("<table><tr><th>cell</th><th>what</th><th>status</th><th>bound</th><th>took</th><th>runs</th></tr>\n");
    for cell in &engine.cells {
        let (class, status) = match cell.status {
            Status::Measured => ("", "measured".to_string()),
            Status::Failed => (
                "failed",
                format!("failed: {}", cell.reason.as_deref().unwrap_or("")),
            ),
            Status::Unsupported => (
                "skipped",
                format!("unsupported: {}", cell.reason.as_deref().unwrap_or("")),
            ),
            Status::Skipped => (
                "skipped",
                format!("skipped: {}", cell.reason.as_deref().unwrap_or("")),
            ),
        };
        let runs: String = cell
            .runs
            .iter()
            .map(|run| {
                let values: Vec<String> = run
                    .iter()
                    .map(|(name, q)| format!("{name}={} ({})", facts::shown(q), q.unit))
                    .collect();
                format!("<code>{}</code><br>", escape(&values.join(" ")))
            })
            .collect();
        out.push_str(&format!(
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{} s</td><td>{:.1} s</td><td>{runs}</td></tr>\n",
            cell.cell,
            escape(cell.title),
            escape(&status),
            cell.bound_s,
            cell.took_ms as f64 / 1000.0,
        ));
    }
    out.push_str("</table>\n");
    out
}
