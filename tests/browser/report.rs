//! `sselab report` in each engine, one quick cell (`tabs-h2`: 10 tabs over HTTP/2, then the
//! probe) so it costs a few seconds: the three files name the engine and its exact version,
//! carry the numbers the browser measured, and list every other cell as skipped, not missing.

use clap::Parser as _;
use sselab::browser::Engine;
use sselab::{Cli, Command};

async fn report_runs_one_quick_cell_and_writes_its_numbers(engine: Engine) {
    let out = tempfile::tempdir().expect("a directory for the report");
    let argv = [
        "sselab",
        "report",
        "--engines",
        &engine.to_string(),
        "--quick",
        "--only",
        "tabs-h2",
        "--out",
        &out.path().display().to_string(),
    ];
    let Command::Report(args) = Cli::try_parse_from(argv).expect("flags").into_command() else {
        panic!("`sselab report` parsed as another command");
    };
    sselab::commands::report(args).await.expect("the report");

    let read = |file: &str| std::fs::read_to_string(out.path().join(file)).expect(file);
    let json: serde_json::Value = serde_json::from_str(&read("report.json")).expect("JSON");
    let ours = &json["engines"][0];
    assert_eq!(ours["engine"], engine.to_string());
    // The engine's own `--version` words, e.g. `Mozilla Firefox 153.8.0esr`.
    let version = ours["version"].as_str().expect("a version");
    assert!(version.chars().any(|c| c.is_ascii_digit()), "{version}");
    let cells = ours["cells"].as_array().expect("cells");
    let cell = |name: &str| cells.iter().find(|c| c["cell"] == name).expect(name);
    let tabs = &cell("tabs-h2");
    assert_eq!(tabs["status"], "measured", "{tabs}");
    let run = &tabs["runs"][0];
    for (name, value, unit) in [
        ("open", serde_json::json!(10), "streams"),
        ("pending", serde_json::json!(0), "tabs"),
        ("connections", serde_json::json!(1), "connections"),
        ("server_streams", serde_json::json!(10), "streams"),
        ("protocol", serde_json::json!("h2"), "protocol"),
    ] {
        assert_eq!(
            run[name],
            serde_json::json!({"value": value, "unit": unit}),
            "{run}"
        );
    }
    let fetch_ms = run["probe_fetch"]["value"].as_u64();
    assert!(
        fetch_ms.is_some_and(|ms| ms < 3000),
        "the fetch beside HTTP/2 streams: {run}"
    );
    assert_eq!(cell("tabs-h1")["status"], "skipped");
    assert_eq!(cells.len(), 10, "every cell listed");

    let line = "open=10 pending=0 protocol=h2 connections=1 server_streams=10";
    let table = read("README-table.md");
    let row = table
        .lines()
        .find(|l| l.starts_with("| 10 tabs, HTTP/2 |"))
        .expect("the HTTP/2 row");
    assert_eq!(
        row,
        format!("| 10 tabs, HTTP/2 | `{line}` | `sselab report --only tabs-h2` |")
    );
    let page = read("report.html");
    assert!(page.contains(version) && page.contains(line), "{page}");
    assert!(page.contains(&format!("probe_fetch={}ms", fetch_ms.unwrap_or_default())));
}

crate::in_every_engine!(
    report_runs_one_quick_cell_and_writes_its_numbers;
    webkit: report_runs_one_quick_cell_and_writes_its_numbers
);
