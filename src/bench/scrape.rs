//! The server's own view, from its Prometheus endpoint (`--server-metrics`), read at moments
//! of a run (load: before, with the streams open, after; attack: before, during, after).
//!
//! The first reading must work, or the run does not start: a wrong URL is a mistake to fix
//! now. A later one that fails does not end a run worth reporting; instead every figure it
//! would have given is reported as not measured, with why ([`NotMeasured`]), never just left
//! out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::bench::args::SharedArgs;
use crate::client::get_body;

/// The RSS sample, in bytes.
pub(super) const RSS: &str = "process_resident_memory_bytes";
/// The CPU sample, in seconds since the process started.
pub(super) const CPU: &str = "process_cpu_seconds_total";

/// Reads `--server-metrics`.
#[derive(Debug, Clone)]
pub(super) struct Scraper {
    url: String,
    cacert: Option<PathBuf>,
    insecure: bool,
    timeout: Duration,
}

/// One reading: `name → value` of the endpoint's unlabelled samples, or why there are none.
#[derive(Debug, Clone)]
pub(super) struct Scrape {
    url: String,
    /// When in the run it was read, as the report says it ("with the streams open").
    moment: &'static str,
    samples: Result<BTreeMap<String, f64>, String>,
}

impl Scraper {
    /// A scraper of `url` (`--server-metrics`), trusting what the streams trust; `None`
    /// without one.
    pub fn new(url: Option<&str>, shared: &SharedArgs, timeout: Duration) -> Option<Self> {
        Some(Self {
            url: url?.to_string(),
            cacert: shared.cacert.clone(),
            insecure: shared.insecure,
            timeout,
        })
    }

    /// Read the endpoint now; `moment` names now in the report.
    pub async fn read(&self, moment: &'static str) -> Scrape {
        let body = get_body(
            &self.url,
            self.cacert.as_deref(),
            self.insecure,
            self.timeout,
        )
        .await;
        let samples = body.map(|body| parse(&String::from_utf8_lossy(&body)));
        Scrape {
            url: self.url.clone(),
            moment,
            samples: samples.map_err(|e| format!("{e:#}")),
        }
    }

    /// A reading now by `scraper`, if there is one.
    pub async fn read_if(scraper: &Option<Self>, moment: &'static str) -> Option<Scrape> {
        match scraper {
            Some(scraper) => Some(scraper.read(moment).await),
            None => None,
        }
    }

    /// The first reading, which must work: its failure is the run's error.
    pub async fn first(&self, moment: &'static str) -> anyhow::Result<Scrape> {
        let scrape = self.read(moment).await;
        if let Err(why) = &scrape.samples {
            anyhow::bail!("--server-metrics: {why}");
        }
        Ok(scrape)
    }
}

impl Scrape {
    /// The value of sample `name`, or why there is none.
    pub fn sample(&self, name: &str) -> Result<f64, String> {
        match &self.samples {
            Ok(samples) => samples
                .get(name)
                .copied()
                .ok_or_else(|| format!("{} had no {name} {}", self.url, self.moment)),
            Err(why) => Err(format!("scraping {} failed: {why}", self.moment)),
        }
    }

    /// How much sample `name` grew from `earlier` to this reading.
    pub fn growth(&self, earlier: &Scrape, name: &str) -> Result<f64, String> {
        Ok(self.sample(name)? - earlier.sample(name)?)
    }
}

/// A Prometheus text page's unlabelled samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.contains('{'))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

/// The figures a report could not give, each with why: figure → reason.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct NotMeasured(BTreeMap<String, String>);

impl NotMeasured {
    /// `value` when it was measured; otherwise `None`, with why recorded under `figure`.
    pub(super) fn note<T>(&mut self, figure: &str, value: Result<T, String>) -> Option<T> {
        match value {
            Ok(value) => Some(value),
            Err(why) => {
                self.0.insert(figure.to_string(), why);
                None
            }
        }
    }

    /// Why `figure` was not measured, if it was not.
    pub fn get(&self, figure: &str) -> Option<&str> {
        self.0.get(figure).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Figure and why, in figure order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(figure, why)| (figure.as_str(), why.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(samples: Result<&str, &str>) -> Scrape {
        Scrape {
            url: "http://127.0.0.1:9/metrics".into(),
            moment: "with the streams open",
            samples: samples.map(parse).map_err(str::to_string),
        }
    }

    #[test]
    fn a_missing_sample_says_which_reading_and_why() {
        let read = scrape(Ok(
            "# HELP x\nprocess_resident_memory_bytes 4096\nm{a=\"b\"} 1\n",
        ));
        assert_eq!(read.sample(RSS), Ok(4096.0));
        let why = read.sample(CPU).expect_err("no CPU sample");
        assert!(
            why.contains(CPU) && why.contains("with the streams open"),
            "{why}"
        );

        let failed = scrape(Err("connection refused"));
        let why = failed.growth(&read, RSS).expect_err("failed reading");
        assert_eq!(
            why,
            "scraping with the streams open failed: connection refused"
        );

        let mut missing = NotMeasured::default();
        assert_eq!(missing.note("server RSS", read.sample(RSS)), Some(4096.0));
        assert_eq!(missing.note("server CPU", failed.sample(CPU)), None);
        let noted: Vec<_> = missing.iter().collect();
        assert_eq!(noted, [("server CPU", why.as_str())]);
    }
}
