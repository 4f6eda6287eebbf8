//! `sselab bench load`'s flags, and the checks that turn them into a plan before anything
//! opens.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::topics;
use crate::bench::args::{Plan, SharedArgs, StreamArgs, secs};

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Another node serving the same streams (sselab --redis): the streams are split
    /// round-robin over --url and each of these. Repeat for more nodes.
    #[arg(long, value_name = "URL")]
    pub also_url: Vec<String>,
    /// Seconds to measure, after the streams are established.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    // The placeholder is spelled out: clap's help prints `{k}` as a line break.
    /// Topics each stream follows on one stream, the same K for every stream. The query pair
    /// of --url (and --also-url) that holds the placeholder `{` `k` `}` is written once per
    /// topic, with the topic's index 0 to K-1 in its place (e.g.
    /// `/sse/topics?topic=t{` `k` `}`); in --publish-url it names each publish's topic, the
    /// next in turn.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub topics_per_stream: u16,
    /// Fan-out mode: POST `{"t":<unix ns>,"seq":n}` (text/plain) here at --rate per second.
    #[arg(long, value_name = "URL")]
    pub publish_url: Option<String>,
    /// Publishers in fan-out mode, each on its own keep-alive connection with one publish
    /// in flight, sharing --rate and the sequence numbers: more than one lets a server whose
    /// publish waits on a round trip (sselab --redis) take them in parallel.
    #[arg(long, value_name = "P", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024),
          requires = "publish_url")]
    pub publishers: u16,
    /// Publishes per second in fan-out mode, in all: each topic of --topics-per-stream, and
    /// each of --publishers, gets its share.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 10.0,
        requires = "publish_url"
    )]
    pub rate: f64,
    /// Seconds to wait after publishing stops for the last events to arrive.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        requires = "publish_url"
    )]
    pub drain: f64,
    /// The server's Prometheus endpoint, to read its RSS (and CPU) before and after.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
}

/// The flags checked: where the streams go, and where and how long to publish.
pub(super) struct LoadPlan {
    pub streams: Plan,
    /// Each topic's publish URL, in index order (one without `--topics-per-stream`).
    pub publish_urls: Vec<String>,
    pub drain: Duration,
}

impl LoadArgs {
    /// Check every flag and resolve the targets, refusing non-loopback ones unless
    /// `--allow-remote`; each stream URL with its topics written in. Opens nothing.
    pub(super) fn plan(&self) -> anyhow::Result<LoadPlan> {
        let topics = self.topics_per_stream;
        let url = topics::stream_url(&self.shared.url, topics, "--url")?;
        let also_urls = self
            .also_url
            .iter()
            .map(|url| topics::stream_url(url, topics, "--also-url"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let streams = self
            .streams
            .plan(&self.shared, &url, &also_urls, self.duration)?;
        let publish_urls = match &self.publish_url {
            Some(url) => topics::publish_urls(url, topics)?,
            None => Vec::new(),
        };
        let drain = secs(self.drain, "--drain")?;
        if self.publish_url.is_some()
            && !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 100_000.0)
        {
            bail!(
                "--rate must be from 0 (exclusive) to 100000 publishes per second, got {}",
                self.rate
            );
        }
        Ok(LoadPlan {
            streams,
            publish_urls,
            drain,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::LoadArgs;

    #[derive(Parser)]
    struct Load {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(flags: &[&str]) -> Result<LoadArgs, clap::Error> {
        let argv = ["load", "--url", "http://127.0.0.1:1/sse/topics/t"];
        Load::try_parse_from(argv.iter().chain(flags)).map(|parsed| parsed.load)
    }

    #[test]
    fn publishers_default_to_one_and_need_a_publish_url() {
        let publish = ["--publish-url", "http://127.0.0.1:1/api/topics/t/events"];
        assert_eq!(parse(&publish).expect("one publisher").publishers, 1);
        let eight = [&publish[..], &["--publishers", "8"]].concat();
        assert_eq!(parse(&eight).expect("eight publishers").publishers, 8);
        let none = [&publish[..], &["--publishers", "0"]].concat();
        let refused = parse(&none).expect_err("zero publishers").to_string();
        assert!(refused.contains("--publishers"), "{refused}");
        let alone = parse(&["--publishers", "8"]).expect_err("no --publish-url");
        assert!(alone.to_string().contains("--publish-url"), "{alone}");
    }
}
