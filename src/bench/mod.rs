//! `sselab bench`: a load generator for any SSE server, on hyper's HTTP/1.1 and HTTP/2
//! clients. It opens N streams (HTTP/1.1: one connection each; HTTP/2: spread over C
//! connections), optionally publishes timestamped, numbered events at a fixed rate, and
//! reports establishment, first-event time, delivery latency, lost and duplicated sequence
//! numbers, and the server's RSS per stream from its Prometheus endpoint.
//!
//! Every wait is bounded: a run ends by `--ramp` + connect timeout + `--duration` + `--drain`,
//! whatever the target does. It refuses non-loopback targets unless `--allow-remote`.

mod report;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http::{Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::client::Proto;
use crate::client::{Conn, Target};
pub use report::{Percentiles, PublishReport, Report};

use crate::sse::parser::Parser;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The stream URL; `{n}` is replaced by each stream's index (so each can be a session).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// How many streams.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub streams: u64,
    /// HTTP/2 connections to spread the streams over (HTTP/1.1 uses one per stream).
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub connections: u64,
    /// h1, h2 (TLS) or h2c (plain); default h2 for https URLs and h1 for http.
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,
    /// Accept any server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Trust this PEM certificate (e.g. certs/cert.pem).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Seconds to measure (after the streams are established).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds over which to open the streams.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub ramp: f64,
    /// Fan-out mode: POST `{"t":<unix ns>,"seq":n}` (text/plain) here at --rate per second.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// Publishes per second in fan-out mode.
    #[arg(long, value_name = "R", default_value_t = 10.0)]
    pub rate: f64,
    /// The server's Prometheus endpoint, to read its RSS (and CPU) before and after.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
    /// Seconds to wait after publishing stops for the last events to arrive.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub drain: f64,
    /// Seconds a connection or a response may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow targets outside the loopback range (127.0.0.0/8, ::1).
    #[arg(long)]
    pub allow_remote: bool,
    /// More log output: -v for debug, -vv for trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        bail!("{flag} must be a number of seconds from 0 to 86400, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Histograms shared by all streams, sharded so 100k streams do not queue on one lock.
struct Shards(Vec<Mutex<Histogram<u64>>>);

const SHARDS: usize = 16;
/// Histograms hold 1 µs to one hour; longer values are clamped to an hour.
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid fixed bounds")
}

impl Shards {
    fn new() -> Self {
        Self((0..SHARDS).map(|_| Mutex::new(histogram())).collect())
    }

    fn record(&self, shard: usize, micros: u64) {
        let mut histogram = self.0[shard % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        histogram.saturating_record(micros.max(1));
    }

    fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.0 {
            let _ = all.add(&*shard.lock().unwrap_or_else(|e| e.into_inner()));
        }
        all
    }
}

/// What every stream task shares.
struct Shared {
    establish: Shards,
    first_event: Shards,
    latency: Shards,
    events: AtomicU64,
    established: AtomicU64,
    ended_early: AtomicU64,
    duplicated: AtomicU64,
    /// Distinct sequence numbers received, summed over streams.
    unique_seqs: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    /// Counting starts when measurement starts (after establishment).
    measuring: CancellationToken,
}

impl Shared {
    fn fail(&self, reason: String) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }
}

/// Run the bench and print its report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let uri: Uri = args
        .url
        .replace("{n}", "0")
        .parse()
        .with_context(|| format!("--url {} is not a URL", args.url))?;
    let https = uri.scheme_str() == Some("https");
    let proto = args
        .proto
        .unwrap_or(if https { Proto::H2 } else { Proto::H1 });
    let target = Target::new(&uri, proto, args.cacert.as_deref(), args.insecure)?;
    if !args.allow_remote && !target.addr.ip().is_loopback() {
        bail!(
            "{} resolves to {}, outside loopback: load tests stay on this machine unless --allow-remote",
            args.url,
            target.addr.ip()
        );
    }
    let ramp = secs(args.ramp, "--ramp")?;
    let duration = secs(args.duration, "--duration")?;
    let drain = secs(args.drain, "--drain")?;
    let connect_timeout = secs(args.connect_timeout, "--connect-timeout")?;
    if args.publish_url.is_some()
        && !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 100_000.0)
    {
        bail!(
            "--rate must be from 0 (exclusive) to 100000 publishes per second, got {}",
            args.rate
        );
    }

    let metrics_before = match &args.server_metrics {
        Some(url) => {
            Some(scrape(url, args.cacert.as_deref(), args.insecure, connect_timeout).await?)
        }
        None => None,
    };

    let shared = Arc::new(Shared {
        establish: Shards::new(),
        first_event: Shards::new(),
        latency: Shards::new(),
        events: AtomicU64::new(0),
        established: AtomicU64::new(0),
        ended_early: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        unique_seqs: AtomicU64::new(0),
        failures: Mutex::new(BTreeMap::new()),
        measuring: CancellationToken::new(),
    });
    let stop = CancellationToken::new();
    let progress = progress_bar(args.json, args.streams);

    // HTTP/2: C shared connections, opened first; a failed one fails each of its streams
    // with its reason. HTTP/1.1: one connection per stream, inside its task.
    let h2_connections: Vec<Result<Conn, String>> = if proto == Proto::H1 {
        Vec::new()
    } else {
        let connecting = (0..args.connections).map(|_| {
            let target = target.clone();
            async move { target.connect(connect_timeout).await }
        });
        futures_util::future::join_all(connecting).await
    };

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.streams {
        let start_at = started + ramp.mul_f64(index as f64 / args.streams as f64);
        let url: Uri = match args.url.replace("{n}", &index.to_string()).parse() {
            Ok(url) => url,
            Err(e) => bail!("--url with {{n}} = {index} is not a URL: {e}"),
        };
        let conn = if proto == Proto::H1 {
            None
        } else {
            match &h2_connections[(index % args.connections) as usize] {
                Ok(conn) => Some(conn.clone()),
                Err(reason) => {
                    shared.fail(reason.clone());
                    continue;
                }
            }
        };
        let (target, shared, stop, progress) = (
            target.clone(),
            shared.clone(),
            stop.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            tokio::time::sleep_until(start_at).await;
            stream(
                index as usize,
                url,
                conn,
                target,
                connect_timeout,
                shared,
                stop,
            )
            .await;
            progress.inc(1);
        });
    }

    // Establishment: until every stream answered or the ramp plus a connect timeout passed.
    let establish_deadline = started + ramp + connect_timeout;
    loop {
        let done = shared.established.load(Ordering::Relaxed) + failures_total(&shared);
        if done >= args.streams || Instant::now() >= establish_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.finish_and_clear();
    let metrics_after = match &args.server_metrics {
        Some(url) => scrape(url, args.cacert.as_deref(), args.insecure, connect_timeout)
            .await
            .ok(),
        None => None,
    };

    // Measurement: events from now on, and publishing in fan-out mode.
    let events_before = shared.events.load(Ordering::Relaxed);
    shared.measuring.cancel();
    let measure_start = Instant::now();
    let publish = match &args.publish_url {
        Some(url) => Some(publish(url, &args, duration, connect_timeout).await?),
        None => {
            tokio::time::sleep(duration).await;
            None
        }
    };

    // Drain: give the last published events time to arrive, then stop every stream.
    if let Some(publish) = &publish {
        let expected = publish.sent * shared.established.load(Ordering::Relaxed);
        let drain_until = Instant::now() + drain;
        while shared.unique_seqs.load(Ordering::Relaxed) < expected && Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let measured = measure_start.elapsed();
    let events_in_window = shared.events.load(Ordering::Relaxed) - events_before;
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();

    let established = shared.established.load(Ordering::Relaxed);
    let failures = shared
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let rss_before = metrics_before
        .as_ref()
        .and_then(|m| m.get("process_resident_memory_bytes"))
        .map(|v| *v as u64);
    let rss_after = metrics_after
        .as_ref()
        .and_then(|m| m.get("process_resident_memory_bytes"))
        .map(|v| *v as u64);
    let cpu = |m: &Option<BTreeMap<String, f64>>| {
        m.as_ref()
            .and_then(|m| m.get("process_cpu_seconds_total"))
            .copied()
    };
    let cpu_after_run = match &args.server_metrics {
        Some(url) => scrape(url, args.cacert.as_deref(), args.insecure, connect_timeout)
            .await
            .ok(),
        None => None,
    };
    let expected = publish.as_ref().map_or(0, |p| p.sent * established);
    let unique = shared.unique_seqs.load(Ordering::Relaxed);
    Ok(Report {
        url: args.url.clone(),
        proto: format!("{proto:?}").to_lowercase(),
        streams: args.streams,
        connections: if proto == Proto::H1 {
            established
        } else {
            args.connections
        },
        established,
        failed: failures.values().sum(),
        failures,
        ended_early: shared.ended_early.load(Ordering::Relaxed),
        establish: Percentiles::from_micros(&shared.establish.merged()),
        first_event: Percentiles::from_micros(&shared.first_event.merged()),
        events_received: events_in_window,
        events_per_sec: events_in_window as f64 / measured.as_secs_f64().max(0.001),
        latency: Percentiles::from_micros(&shared.latency.merged()),
        lost: expected.saturating_sub(unique),
        duplicated: shared.duplicated.load(Ordering::Relaxed),
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_rss_per_stream_bytes: match (rss_before, rss_after) {
            (Some(before), Some(after)) if established > 0 => {
                Some((after as f64 - before as f64) / established as f64)
            }
            _ => None,
        },
        server_cpu_seconds: match (cpu(&metrics_before), cpu(&cpu_after_run)) {
            (Some(before), Some(after)) => Some(after - before),
            _ => None,
        },
        publish,
        measured_secs: measured.as_secs_f64(),
    })
}

fn failures_total(shared: &Shared) -> u64 {
    shared
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .sum()
}

fn progress_bar(json: bool, streams: u64) -> indicatif::ProgressBar {
    if json || streams < 1000 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(streams);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} streams ({elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message("opening");
    bar
}

/// One stream: open it, then read events until told to stop.
async fn stream(
    index: usize,
    url: Uri,
    conn: Option<Conn>,
    target: Target,
    timeout: Duration,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let began = Instant::now();
    let conn = match conn {
        Some(conn) => conn,
        None => match target.connect(timeout).await {
            Ok(conn) => conn,
            Err(reason) => return shared.fail(reason),
        },
    };
    let response =
        match tokio::time::timeout(timeout, send(&conn, "GET", &url, None, Bytes::new())).await {
            Ok(Ok(response)) => response,
            Ok(Err(reason)) => return shared.fail(reason),
            Err(_) => return shared.fail("response: timed out".into()),
        };
    if !response.status().is_success() {
        return shared.fail(format!("HTTP {}", response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        return shared.fail(format!("not SSE (content-type {content_type})"));
    }
    shared
        .establish
        .record(index, began.elapsed().as_micros() as u64);
    shared.established.fetch_add(1, Ordering::Relaxed);

    let mut body = response.into_body();
    let mut parser = Parser::new();
    let mut first_event = true;
    let mut seqs: HashSet<u64> = HashSet::new();
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            frame = body.frame() => frame,
        };
        let data = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(_)) | None => {
                if !stop.is_cancelled() {
                    shared.ended_early.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        let now_ns = unix_nanos();
        for event in parser.feed(&data) {
            if first_event {
                first_event = false;
                shared
                    .first_event
                    .record(index, began.elapsed().as_micros() as u64);
            }
            if !shared.measuring.is_cancelled() {
                continue;
            }
            shared.events.fetch_add(1, Ordering::Relaxed);
            if let Some((sent_ns, seq)) = stamped(&event.data) {
                if seqs.insert(seq) {
                    shared.unique_seqs.fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.duplicated.fetch_add(1, Ordering::Relaxed);
                }
                shared
                    .latency
                    .record(index, now_ns.saturating_sub(sent_ns) / 1000);
            }
        }
    }
}

/// One bench request. Each asks for an event stream, as the bench always has.
async fn send(
    conn: &Conn,
    method: &str,
    uri: &Uri,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Response<Incoming>, String> {
    let mut builder = conn
        .request(method, uri)
        .header(http::header::ACCEPT, "text/event-stream");
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    conn.send(request).await
}

/// `{"t": <unix ns>, "seq": n}` from an event's data.
fn stamped(data: &str) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        t: u64,
        seq: u64,
    }
    let stamp: Stamp = serde_json::from_str(data).ok()?;
    Some((stamp.t, stamp.seq))
}

/// POST stamped events at the rate for the duration, on one keep-alive connection.
async fn publish(
    url: &str,
    args: &BenchArgs,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<PublishReport> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--publish-url {url} is not a URL"))?;
    let target = Target::new(&uri, Proto::H1, args.cacert.as_deref(), args.insecure)?;
    if !args.allow_remote && !target.addr.ip().is_loopback() {
        bail!("--publish-url {url} is outside loopback: pass --allow-remote");
    }
    let mut report = PublishReport {
        url: url.to_string(),
        rate_per_sec: args.rate,
        ..Default::default()
    };
    let mut conn = target
        .connect(timeout)
        .await
        .map_err(|e| anyhow::anyhow!("--publish-url {url}: {e}"))?;
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + duration;
    let mut seq = 0u64;
    while Instant::now() < end {
        every.tick().await;
        seq += 1;
        let body = format!("{{\"t\":{},\"seq\":{seq}}}", unix_nanos());
        let sent = tokio::time::timeout(
            timeout,
            send(&conn, "POST", &uri, Some("text/plain"), Bytes::from(body)),
        )
        .await;
        match sent {
            Ok(Ok(response)) if response.status().is_success() => {
                let _ = response.into_body().collect().await;
                report.sent += 1;
            }
            Ok(Ok(response)) => {
                let _ = response.into_body().collect().await;
                report.failed += 1;
            }
            _ => {
                report.failed += 1;
                // The connection may be gone: open another for the next publish.
                match target.connect(timeout).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
    Ok(report)
}

/// Read a Prometheus text endpoint into `name → value` (unlabelled samples only).
async fn scrape(
    url: &str,
    cacert: Option<&std::path::Path>,
    insecure: bool,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--server-metrics {url} is not a URL"))?;
    let target = Target::new(&uri, Proto::H1, cacert, insecure)?;
    let conn = target
        .connect(timeout)
        .await
        .map_err(|e| anyhow::anyhow!("--server-metrics {url}: {e}"))?;
    let response = tokio::time::timeout(timeout, send(&conn, "GET", &uri, None, Bytes::new()))
        .await
        .map_err(|_| anyhow::anyhow!("--server-metrics {url}: timed out"))?
        .map_err(|e| anyhow::anyhow!("--server-metrics {url}: {e}"))?;
    if !response.status().is_success() {
        bail!("--server-metrics {url}: HTTP {}", response.status());
    }
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| anyhow::anyhow!("--server-metrics {url}: timed out reading"))?
        .map_err(|e| anyhow::anyhow!("--server-metrics {url}: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.contains('{'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect())
}
