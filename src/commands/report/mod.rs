//! `sselab report`: the lab's whole matrix in every installed engine, written as a
//! self-contained `report.html`, a `report.json` of every value with its unit, and
//! `README-table.md` (the README's browser table).
//!
//! Per engine it launches the browser once (QUIC off) and runs each cell (`cells`) in a fresh
//! profile of it (a context, or a browser of its own for HTTP/3), each within its bound: a
//! cell that fails or runs out of time is reported as failed with the reason, and the next
//! one runs. The servers are started here on free loopback ports (`servers`), or `--url`
//! names a running one. What it deliberately does not do: judge the numbers. The tests
//! assert the lab's claims; the report records what this machine's browsers did.

mod cells;
mod facts;
mod html;
mod machine;
mod markdown;
mod model;
mod servers;
mod svg;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use self::cells::Bench;
use self::model::{CellReport, EngineReport, Report, Status};
use self::servers::Servers;
use crate::browser::{Engine, LabBrowser, installed};
use crate::cli::{CellId, ReportArgs};

/// How long launching an engine may take.
const LAUNCH_WITHIN: Duration = Duration::from_secs(60);

/// How long closing a profile may take.
const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// The files `--out` gets.
pub const HTML_FILE: &str = "report.html";
pub const JSON_FILE: &str = "report.json";
pub const TABLE_FILE: &str = "README-table.md";

pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create it", args.out.display()))?;
    let servers = match &args.url {
        None => Servers::start().await?,
        Some(url) => Servers::connect(url, &args.cert_dir).await?,
    };
    let selected: Vec<CellId> = CellId::ALL
        .into_iter()
        .filter(|cell| args.only.is_empty() || args.only.contains(cell))
        .collect();
    let mut engines: Vec<Engine> = Vec::new();
    for engine in &args.engines {
        if !engines.contains(engine) {
            engines.push(*engine);
        }
    }
    let progress = progress_bar(&engines, &selected, args.quick);
    let mut reports = Vec::new();
    for engine in engines {
        reports.push(measure_engine(engine, &servers, &args, &progress).await);
    }
    progress.finish_and_clear();
    let described = servers.described.clone();
    servers.stop().await;
    let report = Report {
        sselab: machine::build().await,
        machine: machine::machine(),
        started_at,
        took_s: started.elapsed().as_secs_f64(),
        mode: if args.quick { "quick" } else { "full" },
        server: described,
        engines: reports,
    };
    write(&report, &args.out)?;
    for file in [HTML_FILE, JSON_FILE, TABLE_FILE] {
        println!("wrote {}", args.out.join(file).display());
    }
    println!("took {:.0} s", report.took_s);
    Ok(())
}

/// Write the three files into `out`.
pub fn write(report: &Report, out: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)? + "\n";
    for (file, text) in [
        (HTML_FILE, html::render(report)),
        (JSON_FILE, json),
        (TABLE_FILE, markdown::render(report)),
    ] {
        let path = out.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One bar for the whole run, in estimated seconds, so its ETA means something.
fn progress_bar(engines: &[Engine], cells: &[CellId], quick: bool) -> ProgressBar {
    let per_engine: u64 = cells
        .iter()
        .map(|cell| cells::plan(*cell, quick).estimate.as_secs())
        .sum();
    let progress = ProgressBar::new(per_engine * engines.len() as u64);
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    progress.set_style(style);
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// Every selected cell in `engine`, or the reason it was skipped.
async fn measure_engine(
    engine: Engine,
    servers: &Servers,
    args: &ReportArgs,
    progress: &ProgressBar,
) -> EngineReport {
    let started = Instant::now();
    let mut report = EngineReport {
        engine: engine.to_string(),
        version: None,
        skipped: None,
        took_s: 0.0,
        connections_from: None,
        cells: Vec::new(),
    };
    let selected = |cell: &CellId| args.only.is_empty() || args.only.contains(cell);
    let planned: u64 = CellId::ALL
        .iter()
        .filter(|c| selected(c))
        .map(|c| cells::plan(*c, args.quick).estimate.as_secs())
        .sum();
    if let Err(missing) = installed::executable(engine) {
        report.skipped = Some(format!("{missing:#}"));
        progress.inc(planned);
        say(progress, &format!("{engine}: skipped: {missing:#}"));
        return report;
    }
    report.version = installed::version(engine).await.ok();
    progress.set_message(format!("{engine}: launching"));
    let spki = servers.spki.as_deref();
    let launched = tokio::time::timeout(LAUNCH_WITHIN, LabBrowser::launch(engine, spki)).await;
    let browser = match launched {
        Ok(Ok(browser)) => Ok(browser),
        Ok(Err(e)) => Err(format!("the browser did not start: {e:#}")),
        Err(_) => Err(format!(
            "the browser did not start within {} s",
            LAUNCH_WITHIN.as_secs()
        )),
    };
    if let Ok(browser) = &browser {
        report.connections_from = Some(browser.connection_source().to_string());
    }
    for cell in CellId::ALL {
        let plan = cells::plan(cell, args.quick);
        let mut cell_report = CellReport {
            cell: cell.name(),
            title: plan.title,
            bound_s: plan.bound.as_secs(),
            took_ms: 0,
            status: Status::Skipped,
            reason: None,
            runs: Vec::new(),
        };
        if !selected(&cell) {
            cell_report.reason = Some("not in --only".into());
        } else if let Some(why) = cells::unsupported(cell, engine) {
            cell_report.status = Status::Unsupported;
            cell_report.reason = Some(why.to_string());
            progress.inc(plan.estimate.as_secs());
        } else if let Some(why) = cells::unavailable(cell, servers) {
            cell_report.reason = Some(why);
            progress.inc(plan.estimate.as_secs());
        } else {
            match &browser {
                Err(why) => {
                    cell_report.status = Status::Failed;
                    cell_report.reason = Some(why.clone());
                }
                Ok(browser) => {
                    progress.set_message(format!("{engine} {}", cell.name()));
                    let bench = Bench {
                        engine,
                        browser,
                        servers,
                        quick: args.quick,
                    };
                    run_cell(cell, &bench, &mut cell_report).await;
                }
            }
            progress.inc(plan.estimate.as_secs());
        }
        if cell_report.status != Status::Skipped || selected(&cell) {
            say(progress, &cell_line(&report.engine, &cell_report));
        }
        report.cells.push(cell_report);
    }
    if let Ok(browser) = browser {
        let _ = tokio::time::timeout(CLOSE_WITHIN, browser.close()).await;
    }
    report.took_s = started.elapsed().as_secs_f64();
    report
}

/// Run `cell`'s repeats, each in a fresh profile, within the cell's bound.
async fn run_cell(cell: CellId, bench: &Bench<'_>, report: &mut CellReport) {
    let plan = cells::plan(cell, bench.quick);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + plan.bound;
    let mut failure = None;
    for _ in 0..plan.repeats {
        let repeat_started = Instant::now();
        // The profile is made and closed outside the measurement's timeout, so one that ran
        // out of time is still closed and holds no stream into the next cell.
        let profile = match tokio::time::timeout_at(deadline, cells::profile(cell, bench)).await {
            Ok(Ok(profile)) => profile,
            Ok(Err(e)) => {
                failure = Some(format!("a fresh profile: {e:#}"));
                break;
            }
            Err(_) => {
                failure = Some(bound_reason(&plan));
                break;
            }
        };
        let made = Instant::now();
        let measured =
            tokio::time::timeout_at(deadline, cells::measure(cell, &profile, bench)).await;
        let closing = Instant::now();
        let _ = tokio::time::timeout(CLOSE_WITHIN, profile.close()).await;
        tracing::debug!(
            cell = cell.name(),
            engine = %bench.engine,
            profile_ms = made.duration_since(repeat_started).as_millis() as u64,
            measure_ms = closing.duration_since(made).as_millis() as u64,
            close_ms = closing.elapsed().as_millis() as u64,
            "one run of a cell"
        );
        match measured {
            Ok(Ok(runs)) => report.runs.extend(runs),
            Ok(Err(e)) => {
                failure = Some(format!("{e:#}"));
                break;
            }
            Err(_) => {
                failure = Some(bound_reason(&plan));
                break;
            }
        }
    }
    report.took_ms = started.elapsed().as_millis() as u64;
    (report.status, report.reason) = match failure {
        None => (Status::Measured, None),
        Some(why) => (Status::Failed, Some(why)),
    };
}

fn bound_reason(plan: &cells::Plan) -> String {
    format!(
        "did not finish within its bound of {} s",
        plan.bound.as_secs()
    )
}

/// One line per finished cell, above the bar: `chromium tabs-h1 (3.2 s): open=6 …`.
fn cell_line(engine: &str, cell: &CellReport) -> String {
    let what = match cell.status {
        Status::Measured => cell
            .runs
            .iter()
            .map(|run| {
                run.iter()
                    .map(|(name, q)| format!("{name}={}", facts::shown(q)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | "),
        Status::Failed => format!("FAILED: {}", cell.reason.as_deref().unwrap_or("")),
        Status::Unsupported => format!("unsupported: {}", cell.reason.as_deref().unwrap_or("")),
        Status::Skipped => format!("skipped: {}", cell.reason.as_deref().unwrap_or("")),
    };
    format!(
        "{engine} {} ({:.1} s): {what}",
        cell.cell,
        cell.took_ms as f64 / 1000.0
    )
}

/// A line above the progress bar (or on stderr when there is no terminal to draw it on).
fn say(progress: &ProgressBar, line: &str) {
    progress.suspend(|| eprintln!("{line}"));
}
