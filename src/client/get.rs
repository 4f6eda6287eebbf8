//! One GET, read whole: how a tool reads a server's own counters (`/metrics`, `/api/stats`)
//! beside the streams it measures. A fresh HTTP/1.1 connection each time (it works on every
//! listener, TLS or not), every step bounded by one timeout.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};

use super::{Proto, Target};

/// GET `url` and give its body; an error (naming the URL) for anything but a 2xx in time.
/// https trusts `cacert`, or any certificate with `insecure`.
pub async fn get_body(
    url: &str,
    cacert: Option<&Path>,
    insecure: bool,
    timeout: Duration,
) -> anyhow::Result<Bytes> {
    let uri: Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let target = Target::new(&uri, Proto::H1, cacert, insecure)?;
    let reading = async {
        let conn = target.connect(timeout).await?;
        let request = conn
            .request("GET", &uri)
            .body(Full::default())
            .map_err(|e| e.to_string())?;
        let response = conn.send(request).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok::<_, String>((status, body.to_bytes()))
    };
    let (status, body) = tokio::time::timeout(timeout, reading)
        .await
        .map_err(|_| anyhow::anyhow!("{url}: no answer within {timeout:?}"))?
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    Ok(body)
}
