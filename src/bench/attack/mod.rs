//! `sselab bench --attack rapid-reset|slowloris|continuation`: attack a server on this machine while a
//! control client measures what a normal client still gets. Two phases: the control alone
//! for `--before` seconds, then the control during the attack for `--duration` seconds. The
//! report compares the control's time to first event across them, with the server's CPU and
//! RSS from `--server-metrics`.
//!
//! Bounded like every bench run: the attack stops by itself at the end of `--duration` or
//! after `--attack-limit` resets or connections, and the target must be on loopback
//! (`--allow-remote` does not apply). It is a lab for a server's own defences, not a tool
//! for anyone else's.

mod args;
mod continuation;
mod control;
mod h2conn;
mod rapid_reset;
mod report;
mod slowloris;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::BenchArgs;
use super::scrape::{self, Metrics};
pub use args::{AttackArgs, AttackKind};
pub use continuation::ContinuationReport;
pub use control::ControlReport;
pub use h2conn::Endings;
pub use rapid_reset::{RESETS_PER_WRITE, RapidResetReport, Spread};
pub use report::{AttackReport, ServerUnderAttack};
pub use slowloris::SlowlorisReport;

/// How often the server's RSS is read during the attack, for its peak.
const SCRAPE_EVERY: Duration = Duration::from_millis(500);

/// Attack tasks end at once when stopped; this is for a machine too busy to schedule them.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Run the attack `args` describes and give its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<AttackReport> {
    let plan = Arc::new(args.attack_plan()?);
    let timeout = plan.connect_timeout;
    let start = scrape::server_metrics(&args, timeout).await?;

    let began = Instant::now();
    let control_before = control::sample(&plan, plan.before).await;
    let before_secs = began.elapsed().as_secs_f64();
    let attack_start = scrape::server_metrics(&args, timeout).await.ok().flatten();

    let stop = CancellationToken::new();
    let attacking = {
        let (plan, stop) = (plan.clone(), stop.clone());
        tokio::spawn(async move {
            match plan.kind {
                AttackKind::RapidReset => Attack::RapidReset(rapid_reset::run(plan, stop).await),
                AttackKind::Slowloris => Attack::Slowloris(slowloris::run(plan, stop).await),
                AttackKind::Continuation => {
                    Attack::Continuation(continuation::run(plan, stop).await)
                }
            }
        })
    };
    let peak = tokio::spawn(peak_rss(args.clone(), timeout, stop.clone()));
    let began = Instant::now();
    let control_during = control::sample(&plan, plan.duration).await;
    let attack_secs = began.elapsed().as_secs_f64();
    let attack_end = scrape::server_metrics(&args, timeout).await.ok().flatten();
    stop.cancel();
    let attack = tokio::time::timeout(STOP_WAIT, attacking).await;
    let peak = peak.await.ok().flatten();
    let after = scrape::server_metrics(&args, timeout).await.ok().flatten();

    let server = start.map(|start| {
        let cpu = |from: &Option<Metrics>, to: &Option<Metrics>, secs: f64| {
            let used = scrape::sample(to, "process_cpu_seconds_total")?
                - scrape::sample(from, "process_cpu_seconds_total")?;
            Some(100.0 * used / secs.max(0.001))
        };
        let start = Some(start);
        let rss = |metrics: &Option<Metrics>| {
            scrape::sample(metrics, "process_resident_memory_bytes").map(|v| v as u64)
        };
        let cut = |metrics: &Option<Metrics>| {
            scrape::sample(metrics, "sselab_connections_closed_without_request_total")
        };
        ServerUnderAttack {
            cpu_before_percent: cpu(&start, &attack_start, before_secs),
            cpu_during_percent: cpu(&attack_start, &attack_end, attack_secs),
            rss_before_bytes: rss(&attack_start),
            rss_peak_bytes: peak.max(rss(&attack_end)),
            rss_after_bytes: rss(&after),
            closed_without_request: match (cut(&attack_start), cut(&after)) {
                (Some(from), Some(to)) => Some((to - from) as u64),
                _ => None,
            },
        }
    });
    let (mut rapid_reset, mut slowloris, mut continuation) = (None, None, None);
    match attack {
        Ok(Ok(Attack::RapidReset(report))) => rapid_reset = Some(report),
        Ok(Ok(Attack::Slowloris(report))) => slowloris = Some(report),
        Ok(Ok(Attack::Continuation(report))) => continuation = Some(report),
        Ok(Err(e)) => anyhow::bail!("the attack task failed: {e}"),
        Err(_) => anyhow::bail!("the attack did not stop within {STOP_WAIT:?} of being told"),
    }
    Ok(AttackReport {
        attack: plan.kind,
        url: args.url.clone(),
        proto: format!("{:?}", plan.target.proto).to_lowercase(),
        attack_connections: plan.connections,
        before_secs,
        attack_secs,
        control_before,
        control_during,
        server,
        rapid_reset,
        slowloris,
        continuation,
    })
}

enum Attack {
    RapidReset(RapidResetReport),
    Slowloris(SlowlorisReport),
    Continuation(ContinuationReport),
}

/// The highest RSS `--server-metrics` showed until `stop`.
async fn peak_rss(args: BenchArgs, timeout: Duration, stop: CancellationToken) -> Option<u64> {
    let mut peak = None;
    while !stop.is_cancelled() {
        if let Ok(metrics) = scrape::server_metrics(&args, timeout).await {
            let rss = scrape::sample(&metrics, "process_resident_memory_bytes").map(|v| v as u64);
            peak = peak.max(rss);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(SCRAPE_EVERY) => {}
        }
    }
    peak
}
