//! Whether one browser with a fresh context per test is as good as a fresh browser: only if
//! each context has a connection pool of its own, so that one test's streams never take
//! another's six HTTP/1.1 connections. Two contexts of one browser each open ten tabs of the
//! clock page over HTTP/1.1 at the same time: each must hit the six-per-host wall on its own.

use crate::util::TestServer;
use crate::util::browser::{SETTLE, launch};
use sselab::browser::{Engine, TabsReport};

/// The most streams an engine opens to one HTTP/1.1 host (readme_table says why Firefox
/// sometimes opens a seventh).
fn most_open_over_http1(engine: Engine) -> usize {
    match engine {
        Engine::Chromium | Engine::Webkit => 6,
        Engine::Firefox => 7,
    }
}

async fn two_contexts_of_one_browser_each_get_six_http1_connections(engine: Engine) {
    let server = TestServer::start(&["--tick-ms", "500"]).await;
    let url = format!("http://127.0.0.1:{}/", server.http.port());
    let browser = launch(engine, &server).await;
    let (a, b) = (
        browser.context().await.expect("context A"),
        browser.context().await.expect("context B"),
    );
    let (tabs_a, tabs_b) =
        tokio::join!(a.open_tabs(&url, 10, SETTLE), b.open_tabs(&url, 10, SETTLE));
    let (report_a, report_b): (TabsReport, TabsReport) = (
        tabs_a.expect("tabs in A").report,
        tabs_b.expect("tabs in B").report,
    );
    let server_streams = server.state.streams.open_streams().http1;
    a.close().await;
    b.close().await;
    browser.close().await;
    eprintln!(
        "{engine}: A {} / B {} / server {server_streams}",
        report_a.line(),
        report_b.line()
    );
    for report in [&report_a, &report_b] {
        assert!(
            (6..=most_open_over_http1(engine)).contains(&report.open),
            "{engine}: {report:#?}"
        );
        assert_eq!(report.open + report.pending, 10, "{report:#?}");
        assert_eq!(report.protocol, "http/1.1");
    }
    assert_eq!(
        server_streams,
        report_a.open + report_b.open,
        "the server holds every open stream of both contexts"
    );
}

crate::in_every_engine!(two_contexts_of_one_browser_each_get_six_http1_connections);
