//! `sselab bench attack rapid-reset|slowloris|continuation`: attack a server on this machine
//! while a control client measures what a normal client still gets. Two phases: the control alone
//! for `--before` seconds, then the control during the attack for `--duration` seconds. The
//! report compares the control's time to first event across them, with the server's CPU and
//! RSS from `--server-metrics`.
//!
//! Bounded like every bench run: the attack stops by itself at the end of `--duration` or
//! after `--attack-limit` resets or connections, and the target must be on loopback
//! (there is no `--allow-remote`). It is a lab for a server's own defences, not a tool
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

pub use args::{AttackArgs, AttackKind};
pub use continuation::ContinuationReport;
pub use control::ControlReport;
pub use h2conn::Endings;
pub use rapid_reset::{RESETS_PER_WRITE, RapidResetReport, Spread};
pub use report::{AttackReport, ServerUnderAttack};
pub use slowloris::SlowlorisReport;

use crate::bench::scrape::{CPU, NotMeasured, RSS, Scrape, Scraper};

/// The server's count of connections closed before a whole request (slowloris cuts).
const CLOSED_WITHOUT_REQUEST: &str = "sselab_connections_closed_without_request_total";

/// How often the server's RSS is read during the attack, for its peak.
const SCRAPE_EVERY: Duration = Duration::from_millis(500);

/// Attack tasks end at once when stopped; this is for a machine too busy to schedule them.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Run the attack `args` describes and give its report.
pub async fn run(args: AttackArgs) -> anyhow::Result<AttackReport> {
    let plan = Arc::new(args.plan()?);
    let timeout = plan.connect_timeout;
    let scraper = Scraper::new(args.server_metrics.as_deref(), &args.shared, timeout);
    let start = match &scraper {
        Some(scraper) => Some(scraper.first("before the control started").await?),
        None => None,
    };

    let began = Instant::now();
    let control_before = control::sample(&plan, plan.before).await;
    let before_secs = began.elapsed().as_secs_f64();
    let attack_start = Scraper::read_if(&scraper, "when the attack started").await;

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
    let peak = scraper
        .clone()
        .map(|scraper| tokio::spawn(peak_rss(scraper, stop.clone())));
    let began = Instant::now();
    let control_during = control::sample(&plan, plan.duration).await;
    let attack_secs = began.elapsed().as_secs_f64();
    let attack_end = Scraper::read_if(&scraper, "when the attack ended").await;
    stop.cancel();
    let attack = tokio::time::timeout(STOP_WAIT, attacking).await;
    let peak = match peak {
        Some(task) => Some(
            task.await
                .unwrap_or_else(|e| Err(format!("its task failed: {e}"))),
        ),
        None => None,
    };
    let after = Scraper::read_if(&scraper, "after the attack stopped").await;

    // All there with --server-metrics, none without.
    let server = match (start, attack_start, attack_end, after, peak) {
        (Some(start), Some(attack_start), Some(attack_end), Some(after), Some(peak)) => {
            let readings = Readings {
                start,
                attack_start,
                attack_end,
                after,
            };
            Some(readings.server(peak, before_secs, attack_secs))
        }
        _ => None,
    };
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
        url: args.shared.url.clone(),
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

/// The readings of `--server-metrics` over an attack run.
struct Readings {
    start: Scrape,
    attack_start: Scrape,
    attack_end: Scrape,
    after: Scrape,
}

impl Readings {
    /// The server's figures, each measured or noted with why not; `peak` is the highest RSS
    /// read during the attack.
    fn server(
        &self,
        peak: Result<u64, String>,
        before_secs: f64,
        attack_secs: f64,
    ) -> ServerUnderAttack {
        let mut not_measured = NotMeasured::default();
        let cpu_percent = |from: &Scrape, to: &Scrape, secs: f64| {
            to.growth(from, CPU)
                .map(|used| 100.0 * used / secs.max(0.001))
        };
        let rss = |scrape: &Scrape| scrape.sample(RSS).map(|bytes| bytes as u64);
        let cut = self
            .after
            .growth(&self.attack_start, CLOSED_WITHOUT_REQUEST)
            .map(|cut| cut as u64);
        ServerUnderAttack {
            cpu_before_percent: not_measured.note(
                "CPU before",
                cpu_percent(&self.start, &self.attack_start, before_secs),
            ),
            cpu_during_percent: not_measured.note(
                "CPU during",
                cpu_percent(&self.attack_start, &self.attack_end, attack_secs),
            ),
            rss_before_bytes: not_measured.note("RSS before", rss(&self.attack_start)),
            rss_peak_bytes: not_measured.note("RSS at peak", higher(rss(&self.attack_end), peak)),
            rss_after_bytes: not_measured.note("RSS after", rss(&self.after)),
            closed_without_request: not_measured.note("closed without request", cut),
            not_measured,
        }
    }
}

/// The highest RSS `scraper` read until `stop` (at least once), or why there is none.
async fn peak_rss(scraper: Scraper, stop: CancellationToken) -> Result<u64, String> {
    let mut peak = Err(String::new()); // replaced by the first reading, either way
    loop {
        let rss = scraper.read("during the attack").await.sample(RSS);
        peak = higher(peak, rss.map(|bytes| bytes as u64));
        tokio::select! {
            _ = stop.cancelled() => return peak,
            _ = tokio::time::sleep(SCRAPE_EVERY) => {}
        }
    }
}

/// The higher of two readings that were measured; with neither, the later one's why.
fn higher(a: Result<u64, String>, b: Result<u64, String>) -> Result<u64, String> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(a.max(b)),
        (Ok(one), Err(_)) | (Err(_), Ok(one)) => Ok(one),
        (Err(_), Err(why)) => Err(why),
    }
}
