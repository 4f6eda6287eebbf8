//! `--topics-per-stream K`: each stream follows K topics on one stream (sselab's
//! `/sse/topics?topic=a&topic=b…`, Mercure's repeated `?topic=`), and the publisher spreads its
//! publishes over the same K topics.
//!
//! Every stream follows the **same** K topics, so one publish to any of them reaches every
//! stream, as a publish to the one topic does with K = 1: a run's fan-out, its `lost` and
//! `duplicated` (every publish has its own sequence number, whatever topic it went to) and its
//! deliveries per second read the same for any K. The topics are named by the placeholder
//! [`PLACEHOLDER`], which each topic's index (0 to K − 1) replaces: in the stream URL's query,
//! the pair that holds it is written once per topic; in the publish URL, each publish names the
//! next topic in turn.

use anyhow::bail;

/// What each topic's index replaces.
pub(super) const PLACEHOLDER: &str = "{k}";

/// Stream URL `url` (a template, `{n}` left for each stream) with every query pair that holds
/// [`PLACEHOLDER`] written once per topic, `flag` naming the URL in errors. Without the
/// placeholder, K must be 1 and the URL stays as it is.
pub(super) fn stream_url(url: &str, topics: u16, flag: &str) -> anyhow::Result<String> {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    let (before, query) = rest.split_once('?').unwrap_or((rest, ""));
    if before.contains(PLACEHOLDER) || fragment.is_some_and(|f| f.contains(PLACEHOLDER)) {
        bail!("{flag} {url}: {PLACEHOLDER} belongs in the query, e.g. ?topic=t{PLACEHOLDER}");
    }
    if !query.contains(PLACEHOLDER) {
        if topics > 1 {
            bail!(
                "--topics-per-stream {topics} needs {PLACEHOLDER} in {flag}'s query, e.g. \
                 /sse/topics?topic=t{PLACEHOLDER}: the pair that holds it is written once per \
                 topic, {PLACEHOLDER} replaced by 0 to {}",
                topics - 1
            );
        }
        return Ok(url.to_string());
    }
    let pairs: Vec<String> = query
        .split('&')
        .flat_map(|pair| {
            let copies = if pair.contains(PLACEHOLDER) {
                topics
            } else {
                1
            };
            (0..copies).map(move |k| pair.replace(PLACEHOLDER, &k.to_string()))
        })
        .collect();
    let query = pairs.join("&");
    Ok(match fragment {
        Some(fragment) => format!("{before}?{query}#{fragment}"),
        None => format!("{before}?{query}"),
    })
}

/// The publish URL of each topic, in index order: [`PLACEHOLDER`] replaced by 0 to K − 1.
/// Without it, K must be 1: publishing to one topic of several would read as lost events.
pub(super) fn publish_urls(url: &str, topics: u16) -> anyhow::Result<Vec<String>> {
    if !url.contains(PLACEHOLDER) && topics > 1 {
        bail!(
            "--topics-per-stream {topics} needs {PLACEHOLDER} in --publish-url, e.g. \
             /api/topics/t{PLACEHOLDER}/events: each publish goes to the next topic in turn"
        );
    }
    Ok((0..topics)
        .map(|k| url.replace(PLACEHOLDER, &k.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(url: &str, topics: u16) -> String {
        stream_url(url, topics, "--url").expect("a URL the topics can be written in")
    }

    fn refused(url: &str, topics: u16, flag: &str) -> String {
        let error = stream_url(url, topics, flag).expect_err("refused");
        error.to_string()
    }

    #[test]
    fn the_pair_with_the_placeholder_is_written_once_per_topic() {
        assert_eq!(
            expanded("http://h/sse/topics?a=1&topic=t{k}&b=2#f", 3),
            "http://h/sse/topics?a=1&topic=t0&topic=t1&topic=t2&b=2#f"
        );
        assert_eq!(
            expanded("http://h/sse/topics?topic=s{n}x{k}", 2),
            "http://h/sse/topics?topic=s{n}x0&topic=s{n}x1"
        );
        assert_eq!(
            expanded("http://h/sse/topics?topic=t{k}", 1),
            "http://h/sse/topics?topic=t0"
        );
        // K = 1 without the placeholder: today's URL, untouched.
        assert_eq!(
            expanded("http://h/sse/topics/fan", 1),
            "http://h/sse/topics/fan"
        );
    }

    #[test]
    fn a_placeholder_missing_or_out_of_the_query_names_the_flag() {
        let missing = refused("http://h/sse/topics/fan", 4, "--also-url");
        assert!(missing.contains("--also-url's query"), "{missing}");
        let in_path = refused("http://h/sse/topics/t{k}", 4, "--url");
        assert!(in_path.contains("belongs in the query"), "{in_path}");
        let publish = publish_urls("http://h/api/topics/fan/events", 4).expect_err("refused");
        assert!(publish.to_string().contains("--publish-url"), "{publish}");
        let each = publish_urls("http://h/api/topics/t{k}/events", 2).expect("two topics");
        assert_eq!(
            each,
            [
                "http://h/api/topics/t0/events",
                "http://h/api/topics/t1/events"
            ]
        );
    }
}
