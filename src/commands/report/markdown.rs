//! `README-table.md`: the README's browser table from a report, rows = facts, columns =
//! engines (then the command that measures the row again), and a line saying which run it
//! came from.

use super::facts::{self, Entry, ROWS};
use super::model::Report;

pub fn render(report: &Report) -> String {
    let mut out = format!(
        "Measured by `sselab report` ({mode}) on {date}, sselab {version} ({commit}); {machine}.\n\n",
        mode = report.mode,
        date = report.started_at,
        version = report.sselab.version,
        commit = report.sselab.commit.as_deref().unwrap_or("commit unknown"),
        machine = machine(report),
    );
    let columns: Vec<String> = report.engines.iter().map(facts::column).collect();
    out.push_str(&format!("| row | {} | rerun |\n", columns.join(" | ")));
    out.push_str(&format!("|---|{}---|\n", "---|".repeat(columns.len())));
    for row in ROWS {
        let cells: Vec<String> = report
            .engines
            .iter()
            .map(|engine| cell(&facts::entry(engine, row)))
            .collect();
        out.push_str(&format!(
            "| {} | {} | `sselab report --only {}` |\n",
            row.fact,
            cells.join(" | "),
            row.cell
        ));
    }
    out
}

/// One table cell: the values in backticks, the rest as words; no `|` or line break to
/// break the table.
fn cell(entry: &Entry) -> String {
    let text = match entry {
        Entry::Values { line, runs } if *runs > 1 => format!("`{line}` ({runs} runs)"),
        Entry::Values { line, .. } => format!("`{line}`"),
        other => other.text(),
    };
    text.replace('|', "\\|").replace('\n', " ")
}

/// `2 cores, 7.8 GiB, Linux 6.1.0`.
pub fn machine(report: &Report) -> String {
    let machine = &report.machine;
    let cores = machine
        .cores
        .map_or("cores unknown".into(), |n| format!("{n} cores"));
    let memory = machine.memory_bytes.map_or("memory unknown".into(), |b| {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    });
    let kernel = machine.kernel.as_deref().unwrap_or("unknown");
    format!("{cores}, {memory}, {} {kernel}", machine.os)
}
