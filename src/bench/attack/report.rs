//! What an attack run measured, and how it is printed: the control client before and during,
//! the server's CPU and RSS, and what the attack itself did and was told.

use std::collections::BTreeMap;

use serde::Serialize;

use super::args::AttackKind;
use super::continuation::ContinuationReport;
use super::control::ControlReport;
use super::h2conn::Endings;
use super::rapid_reset::RapidResetReport;
use super::slowloris::SlowlorisReport;
use crate::bench::percentiles::Percentiles;
use crate::bench::scrape::NotMeasured;

/// The server's side, from `--server-metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerUnderAttack {
    /// CPU time over wall time, in percent of one core, with the control alone.
    pub cpu_before_percent: Option<f64>,
    /// The same during the attack.
    pub cpu_during_percent: Option<f64>,
    pub rss_before_bytes: Option<u64>,
    /// The highest RSS read during the attack (every half second).
    pub rss_peak_bytes: Option<u64>,
    /// After the attack stopped.
    pub rss_after_bytes: Option<u64>,
    /// Connections that closed before a whole request arrived, from the attack's start until
    /// after it stopped (the server's count of slowloris cuts).
    pub closed_without_request: Option<u64>,
    /// The figures above that `--server-metrics` did not give: figure → why.
    #[serde(skip_serializing_if = "NotMeasured::is_empty")]
    pub not_measured: NotMeasured,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub attack: AttackKind,
    pub url: String,
    pub proto: String,
    pub attack_connections: u64,
    pub before_secs: f64,
    pub attack_secs: f64,
    pub control_before: ControlReport,
    pub control_during: ControlReport,
    pub server: Option<ServerUnderAttack>,
    pub rapid_reset: Option<RapidResetReport>,
    pub slowloris: Option<SlowlorisReport>,
    pub continuation: Option<ContinuationReport>,
}

impl AttackReport {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| out.push_str(&format!("{label:<22} {value}\n"));
        line(
            "attack",
            format!(
                "{} on {} ({}), {} connections at once, {:.1} s",
                self.attack.name(),
                self.url,
                self.proto,
                self.attack_connections,
                self.attack_secs
            ),
        );
        line(
            "control before",
            control(&self.control_before, self.before_secs),
        );
        line(
            "control during",
            control(&self.control_during, self.attack_secs),
        );
        if let Some(reset) = &self.rapid_reset {
            line(
                "resets",
                format!(
                    "{} written ({:.0}/s) on {} connections; the server took {} streams",
                    reset.resets_written,
                    reset.resets_per_sec,
                    reset.endings.connections,
                    reset.streams_taken
                ),
            );
            line(
                "streams before GOAWAY",
                format!(
                    "p50 {}, max {} per connection (the server's last stream)",
                    reset.streams_before_goaway.p50, reset.streams_before_goaway.max
                ),
            );
            endings(&mut line, &reset.endings);
        }
        if let Some(flood) = &self.continuation {
            line(
                "header bytes",
                format!(
                    "{:.1} MiB written ({:.1} MiB/s) on {} connections, never an END_HEADERS",
                    flood.bytes_written as f64 / 1048576.0,
                    flood.bytes_per_sec / 1048576.0,
                    flood.endings.connections
                ),
            );
            endings(&mut line, &flood.endings);
        }
        if let Some(slow) = &self.slowloris {
            line(
                "slow connections",
                format!(
                    "{} opened, {} at most at once, {} cut by the server, {} refused (503), {} held at the end",
                    slow.opened, slow.peak_open, slow.cut_by_server, slow.refused, slow.held_at_end
                ),
            );
            line("  cut after", percentiles(&slow.lifetime));
            if !slow.connect_failures.is_empty() {
                line("connect failures", counts(&slow.connect_failures));
            }
        }
        if let Some(server) = &self.server {
            let percent = |p: Option<f64>| p.map_or("n/a".into(), |p| format!("{p:.0} %"));
            let mib = |b: Option<u64>| {
                b.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
            };
            line(
                "server CPU",
                format!(
                    "{} of a core before, {} during",
                    percent(server.cpu_before_percent),
                    percent(server.cpu_during_percent)
                ),
            );
            line(
                "server RSS",
                format!(
                    "{} before, {} at peak, {} after",
                    mib(server.rss_before_bytes),
                    mib(server.rss_peak_bytes),
                    mib(server.rss_after_bytes)
                ),
            );
            if let Some(cut) = server.closed_without_request {
                line(
                    "server closed",
                    format!("{cut} connections before a whole request"),
                );
            }
            for (figure, why) in server.not_measured.iter() {
                line("  not measured", format!("{figure}: {why}"));
            }
        }
        out
    }
}

/// How an HTTP/2 attack's connections ended.
fn endings(line: &mut impl FnMut(&str, String), endings: &Endings) {
    line(
        "connections ended",
        format!(
            "GOAWAY {}; closed without GOAWAY {}; still attacking at the end {}",
            counts(&endings.goaways),
            endings.closed_without_goaway,
            endings.stopped
        ),
    );
    if !endings.connect_failures.is_empty() {
        line("connect failures", counts(&endings.connect_failures));
    }
}

fn control(report: &ControlReport, secs: f64) -> String {
    let mut text = format!(
        "time to first event {} over {secs:.1} s",
        percentiles(&report.first_event)
    );
    if report.failed > 0 {
        text.push_str(&format!(
            "; {} failed: {}",
            report.failed,
            counts(&report.failures)
        ));
    }
    text
}

fn counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(what, n)| format!("{n} × {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentiles(p: &Percentiles) -> String {
    if p.samples == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        p.p50_ms, p.p99_ms, p.max_ms, p.samples
    )
}
