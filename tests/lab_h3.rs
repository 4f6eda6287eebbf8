//! `/lab`'s fourth column in real browsers: each run says what the browser negotiated for its
//! probe (`nextHopProtocol`) beside what the server saw, and an `h3` run in a browser that was
//! not told to use QUIC says so, with the command that makes Chromium use it.

mod util;

use sselab::browser::{Engine, LabBrowser, Tab, eval};
use util::TestServer;
use util::bin::{Running, sselab};
use util::browser::{launch, until};

/// Start a run of `streams` streams against `target` in `/lab`, probing after `probe_secs`.
async fn start_run(lab: &Tab, target: &str, streams: usize, probe_secs: u64) {
    let start = format!(
        "document.getElementById('target').value = '{target}'; \
         document.getElementById('streams').value = '{streams}'; \
         document.getElementById('probe-timeout').value = '{probe_secs}'; \
         document.getElementById('start').click(); true"
    );
    lab.evaluate(&start).await.expect("start a run");
}

/// The run's negotiated line, once its probe has answered or given up.
async fn negotiated(lab: &Tab, run: &str) -> (String, String) {
    let section = format!("document.querySelector('section.run[data-run=\"{run}\"]')");
    until(lab, &format!("{section} && {section}.dataset.negotiated")).await;
    eval(
        lab,
        &format!(
            "[{section}.dataset.negotiated, {section}.querySelector('.negotiated').textContent]"
        ),
    )
    .await
    .expect("negotiated")
}

async fn without_quic_the_h3_run_says_the_browser_did_not_use_http3(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500", "--timeout", "0"]).await;
    let browser = launch(engine, &server).await;
    let lab = browser
        .page(&format!("http://127.0.0.1:{}/lab", server.http.port()))
        .await
        .expect("/lab");
    start_run(&lab, "https", 3, 5).await;
    start_run(&lab, "h3", 3, 2).await;
    let https = negotiated(&lab, "https").await;
    let h3 = negotiated(&lab, "h3").await;
    browser.close().await;
    eprintln!("{engine}: https {https:?}, h3 {h3:?}");
    // The browser's own word, read across origins (Timing-Allow-Origin on /proto).
    assert_eq!(
        https,
        (
            "h2".to_string(),
            "negotiated: h2 (browser, nextHopProtocol) · HTTP/2 (server)".to_string()
        )
    );
    // The test's h3 port has no TCP listener, and QUIC is off in these browsers: nothing
    // answers there, and the run says why and what to do.
    let port = server.h3.port();
    assert_eq!(h3.0, "none");
    assert_eq!(
        h3.1,
        format!(
            "no answer — this browser did not use HTTP/3; start Chromium with chromium \
             --user-data-dir=\"$(mktemp -d)\" --origin-to-force-quic-on=127.0.0.1:{port} \
             --ignore-certificate-errors-spki-list={} https://127.0.0.1:{port}/",
            server.spki
        )
    );
}

/// A port number free on both TCP and UDP loopback, for an `https` and an `h3` listener that
/// share it as they do by default (8443). Another process could take it before the server
/// binds it; the server then fails at start, naming the address, and the test with it.
fn a_port_free_for_tcp_and_udp() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a TCP port");
        let port = tcp.local_addr().expect("its address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn on_the_default_layout_a_browser_without_quic_gets_h2_and_is_told_so(engine: Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = a_port_free_for_tcp_and_udp().to_string();
    let shared = format!("127.0.0.1:{port}");
    let cert_dir = dir.path().display().to_string();
    let server = Running::start(
        &mut sselab(&[
            "--http",
            "127.0.0.1:0",
            "--https",
            &shared,
            "--https-h1",
            "off",
            "--h3",
            &shared,
            "--cert-dir",
            &cert_dir,
            "--tick-ms",
            "500",
            "--timeout",
            "0",
        ]),
        dir.path(),
    );
    let spki = server
        .banner
        .iter()
        .find_map(|l| l.split("--ignore-certificate-errors-spki-list=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the SPKI hash in the banner")
        .to_string();
    let browser = LabBrowser::launch(engine, Some(&spki))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let lab = browser
        .page(&format!(
            "http://localhost:{}/lab",
            server.addr("http").port()
        ))
        .await
        .expect("/lab");
    start_run(&lab, "h3", 3, 5).await;
    let h3 = negotiated(&lab, "h3").await;
    let summary: String = eval(
        &lab,
        "document.querySelector('section.run[data-run=\"h3\"] .summary').textContent",
    )
    .await
    .expect("summary");
    browser.close().await;
    eprintln!("{engine}: {summary} / {h3:?}");
    // The h3 run's origin, https://127.0.0.1:PORT, is the HTTPS listener's too: the browser
    // took TCP and HTTP/2 there. Firefox ESR 153 opens one HTTP/2 connection per EventSource
    // started at once on an IP-literal origin (3 here, every run; on https://localhost:PORT
    // it waits for the first and shares it); Chromium shares one.
    let expected = match engine {
        Engine::Chromium => "3 open on 1 connection — HTTP/2",
        Engine::Firefox => "3 open on 3 connections — HTTP/2",
    };
    assert_eq!(summary, expected);
    assert_eq!(h3.0, "h2");
    assert_eq!(
        h3.1,
        format!(
            "h2 — this browser did not use HTTP/3; start Chromium with chromium \
             --user-data-dir=\"$(mktemp -d)\" --origin-to-force-quic-on=127.0.0.1:{port} \
             --ignore-certificate-errors-spki-list={spki} https://127.0.0.1:{port}/"
        )
    );
}

in_every_engine!(
    without_quic_the_h3_run_says_the_browser_did_not_use_http3,
    on_the_default_layout_a_browser_without_quic_gets_h2_and_is_told_so,
);
