//! The renderers on a report made here, no browser: the JSON keeps every value with its unit,
//! the Markdown table has a column per engine and a row per fact, and the HTML needs nothing
//! from outside the file.

use serde_json::json;

use super::facts::ROWS;
use super::model::{Build, CellReport, EngineReport, Machine, Report, Status, values};
use super::{html, markdown};

fn tabs_cell(open: u64, fetch: serde_json::Value) -> CellReport {
    CellReport {
        cell: "tabs-h1",
        title: "10 tabs, plain HTTP/1.1, then the probe",
        bound_s: 45,
        took_ms: 8000,
        status: Status::Measured,
        reason: None,
        runs: vec![values([
            ("open", json!(open), "streams"),
            ("pending", json!(10 - open), "tabs"),
            ("protocol", json!("http/1.1"), "protocol"),
            ("connections", json!(open), "connections"),
            ("server_streams", json!(open), "streams"),
            ("probe_fetch", fetch, "ms"),
            ("probe_nav", json!("blocked"), "ms"),
            ("probe_timeout", json!(3000), "ms"),
        ])],
    }
}

fn report() -> Report {
    let mut reconnect = CellReport {
        cell: "reconnect",
        title: "reconnect",
        bound_s: 30,
        took_ms: 6000,
        status: Status::Measured,
        reason: None,
        runs: Vec::new(),
    };
    for ms in [1503, 1509] {
        reconnect.runs.push(values([
            ("reconnect_ms", json!(ms), "ms"),
            ("last_event_id", json!(6), "id"),
        ]));
    }
    let failed = CellReport {
        cell: "tabs-h3",
        title: "10 tabs, HTTP/3",
        bound_s: 60,
        took_ms: 100,
        status: Status::Failed,
        reason: Some("no QUIC | <here>\nat all".into()),
        runs: Vec::new(),
    };
    let unsupported = CellReport {
        cell: "cap-h3",
        title: "at the server's QUIC stream cap",
        bound_s: 60,
        took_ms: 0,
        status: Status::Unsupported,
        reason: Some("no QUIC in this engine".into()),
        runs: Vec::new(),
    };
    let chromium = EngineReport {
        engine: "chromium".into(),
        version: Some("Chromium 156.0.8078.129 built on Debian GNU/Linux 12 (bookworm)".into()),
        skipped: None,
        took_s: 60.0,
        connections_from: Some("the browser's connection ids".into()),
        cells: vec![tabs_cell(6, json!("blocked")), reconnect, failed],
    };
    let firefox = EngineReport {
        engine: "firefox".into(),
        version: Some("Mozilla Firefox 153.8.0esr".into()),
        skipped: None,
        took_s: 70.0,
        connections_from: None,
        cells: vec![tabs_cell(7, json!(6)), unsupported],
    };
    let missing = EngineReport {
        engine: "webkit".into(),
        version: None,
        skipped: Some("WebKitWebDriver not found: apt-get install webkit2gtk-driver".into()),
        took_s: 0.0,
        connections_from: None,
        cells: Vec::new(),
    };
    Report {
        sselab: Build {
            version: "0.1.0",
            commit: Some("abc123".into()),
            commit_from: "git",
        },
        machine: Machine {
            cores: Some(2),
            memory_bytes: Some(8 << 30),
            kernel: Some("6.1.0".into()),
            os: "linux",
        },
        started_at: "2026-12-07T20:00:00Z".into(),
        took_s: 130.0,
        mode: "quick",
        server: "in-process".into(),
        engines: vec![chromium, firefox, missing],
    }
}

#[test]
fn the_json_keeps_every_value_with_its_unit_and_every_cell_with_its_status() {
    let json = serde_json::to_value(report()).expect("serialises");
    let cells = &json["engines"][0]["cells"];
    assert_eq!(
        cells[0]["runs"][0]["open"],
        json!({"value": 6, "unit": "streams"})
    );
    assert_eq!(
        cells[0]["runs"][0]["probe_fetch"],
        json!({"value": "blocked", "unit": "ms"})
    );
    assert_eq!(cells[0]["status"], "measured");
    assert_eq!(cells[2]["status"], "failed");
    assert_eq!(cells[2]["reason"], "no QUIC | <here>\nat all");
    assert_eq!(
        json["engines"][2]["skipped"]
            .as_str()
            .map(|s| s.contains("apt-get")),
        Some(true)
    );
    assert_eq!(json["engines"][1]["cells"][1]["status"], "unsupported");
    assert_eq!(json["machine"]["cores"], 2);
}

#[test]
fn the_markdown_table_has_a_column_per_engine_and_the_readme_rows() {
    let table = markdown::render(&report());
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("(quick)") && lines[0].contains("abc123"),
        "{table}"
    );
    let header = lines
        .iter()
        .position(|l| l.starts_with("| row |"))
        .expect("a header");
    assert_eq!(
        lines[header],
        "| row | Chromium 156.0.8078.129 | Mozilla Firefox 153.8.0esr | webkit | rerun |"
    );
    assert_eq!(lines[header + 1], "|---|---|---|---|---|");
    assert_eq!(lines.len() - header - 2, ROWS.len(), "a line per row");
    let row = |fact: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("| {fact} |")))
            .unwrap_or_else(|| panic!("no row {fact}: {table}"))
    };
    let tabs = row("10 tabs, plain HTTP/1.1");
    assert!(
        tabs.contains("| `open=6 pending=4 protocol=http/1.1 connections=6 server_streams=6` |"),
        "{tabs}"
    );
    assert!(
        tabs.contains("| `open=7 pending=3 protocol=http/1.1 connections=7 server_streams=7` |"),
        "{tabs}"
    );
    assert!(
        tabs.ends_with(
            "| not measured: WebKitWebDriver not found: apt-get install webkit2gtk-driver \
             | `sselab report --only tabs-h1` |"
        ),
        "{tabs}"
    );
    let probe = row("probe beside 10 HTTP/1.1 streams");
    assert!(
        probe.contains("`probe_fetch=blocked probe_nav=blocked`")
            && probe.contains("`probe_fetch=6ms probe_nav=blocked`"),
        "{probe}"
    );
    // Runs that differ: a range of milliseconds, the runs counted.
    let reconnect = row("`?timeout=3&retry=1500`");
    assert!(
        reconnect.contains(
            "`reconnect_ms=1503–1509ms last_event_id=6 continued_after_it=- gaps=-` (2 runs)"
        ),
        "{reconnect}"
    );
    // A failure in words, with nothing in it that breaks the table.
    let h3 = row("10 tabs, HTTP/3");
    assert!(h3.contains("| failed: no QUIC \\| <here> at all |"), "{h3}");
    // What an engine cannot do is an answer, not a failure.
    let cap = row("`--h3-max-streams 5`");
    assert!(
        cap.contains("| unsupported: no QUIC in this engine |"),
        "{cap}"
    );
}

#[test]
fn the_html_is_self_contained_with_tables_and_charts() {
    let page = html::render(&report());
    for outside in [
        "src=", "href=", "url(", "@import", "<script", "<link", "http://", "https://",
    ] {
        assert!(
            !page.contains(outside),
            "the page refers outside with {outside}"
        );
    }
    assert!(page.starts_with("<!doctype html>"));
    assert!(
        page.contains("Chromium 156.0.8078.129 built on Debian"),
        "the exact version"
    );
    assert!(page.contains("<svg") && page.contains("6 open") && page.contains("4 waiting"));
    assert!(page.contains("open=6 pending=4 protocol=http/1.1"));
    assert!(
        page.contains("failed: no QUIC | &lt;here&gt; at all"),
        "escaped"
    );
    assert!(!page.contains("<here>"));
    assert!(page.contains("2 cores") && page.contains("abc123"));
}

#[test]
fn every_cell_is_named_as_only_takes_it() {
    use clap::ValueEnum;
    for cell in crate::cli::CellId::ALL {
        let name = cell.to_possible_value().map(|v| v.get_name().to_string());
        assert_eq!(name.as_deref(), Some(cell.name()));
    }
    for row in ROWS {
        assert!(
            crate::cli::CellId::ALL.iter().any(|c| c.name() == row.cell),
            "{} names no cell",
            row.fact
        );
    }
}
