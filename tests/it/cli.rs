//! The `sselab` binary as a person runs it: start banner, signals, and errors that name
//! the flag, file or address at fault. Every run is bounded (tests/util/bin.rs) and on free
//! ports: a regression fails its test instead of hanging the suite or taking port 8080.

use std::io::{Read, Write};

use crate::util::bin::{Running, run, sselab};
use crate::util::{ALL_ON_PORT_0, LONG_GRACE, PATIENCE, PROMPT_SHUTDOWN};

#[test]
fn banner_names_each_listener_and_sigterm_ends_open_streams_and_exits_zero_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_dir = dir.path().join("certs").display().to_string();
    let mut command = sselab(&ALL_ON_PORT_0);
    command.args(["--cert-dir", &cert_dir]).args(LONG_GRACE);
    let server = Running::start(&mut command, dir.path());
    let lines = &server.banner;
    assert!(
        lines[0].starts_with("listening http ") && lines[0].contains("http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("listening https ") && lines[1].contains("https://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("listening https-h1 "), "{lines:?}");
    assert!(
        lines[3].starts_with("listening h3 ") && lines[3].contains("QUIC (UDP), ALPN h3"),
        "{lines:?}"
    );
    assert!(
        lines[4].starts_with("certificate ") && lines[4].contains(" sha256 "),
        "{lines:?}"
    );

    // Hold a stream open over plain HTTP/1.1, then ask the process to stop.
    let mut stream = std::net::TcpStream::connect(server.addr("http")).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
        .write_all(b"GET /sse/hello?timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut first = [0u8; 64];
    let _ = stream.read(&mut first).expect("response starts");

    let exit = server.terminate();
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    assert!(
        exit.took < PROMPT_SHUTDOWN,
        "exited {:?} after SIGTERM: the open stream held it up (--grace {} s)",
        exit.took,
        LONG_GRACE[1]
    );
}

#[test]
fn a_port_in_use_is_an_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run(&mut sselab(&[
        "--http",
        &addr,
        "--https",
        "off",
        "--https-h1",
        "off",
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("--http"),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_certificate_stops_the_start_with_the_file_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cert.pem"), "garbage").expect("write");
    std::fs::write(dir.path().join("key.pem"), "garbage").expect("write");
    let cert_dir = dir.path().display().to_string();
    let output = run(&mut sselab(&[
        "--http",
        "off",
        "--https",
        "127.0.0.1:0",
        "--https-h1",
        "off",
        "--cert-dir",
        &cert_dir,
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cert.pem") && stderr.contains("--regen-cert"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cert.pem")).expect("kept"),
        "garbage"
    );
}

#[test]
fn bad_flags_name_the_flag() {
    for (args, flag) in [
        (vec!["--timeout", "abc"], "--timeout"),
        (vec!["--timeout", "-5"], "--timeout"),
        (vec!["--http", "nowhere"], "--http"),
        (vec!["--retry-jitter", "1.5"], "--retry-jitter"),
        (vec!["--retry-jitter", "a lot"], "--retry-jitter"),
        (vec!["--drain-spread", "-1"], "--drain-spread"),
        (vec!["--drain-spread", "4000"], "--drain-spread"),
        (vec!["--jwt-leeway", "3601"], "--jwt-leeway"),
        (vec!["--jwt-leeway", "-1"], "--jwt-leeway"),
        (
            vec![
                "--cors-origin",
                "not an origin",
                "--https",
                "off",
                "--https-h1",
                "off",
                "--http",
                "127.0.0.1:0",
            ],
            "--cors-origin",
        ),
        (
            vec!["--http", "off", "--https", "off", "--https-h1", "off"],
            "--http",
        ),
        (
            vec!["tabs", "--url", "http://127.0.0.1:1/", "--share", "all"],
            "--share",
        ),
        (
            vec![
                "tabs",
                "--url",
                "http://127.0.0.1:1/",
                "--probe",
                "--probe-timeout",
                "0",
            ],
            "--probe-timeout",
        ),
        // HTTP/3 is TLS only: a plain http:// page cannot be reached over QUIC.
        (
            vec!["tabs", "--url", "http://127.0.0.1:1/", "--proto", "h3"],
            "--proto h3",
        ),
        (
            vec!["tabs", "--url", "https://127.0.0.1:1/", "--proto", "h4"],
            "--proto",
        ),
        // A timeout for a probe that was not asked for is a mistake worth naming.
        (
            vec![
                "tabs",
                "--url",
                "http://127.0.0.1:1/",
                "--probe-timeout",
                "3",
            ],
            "--probe",
        ),
    ] {
        let output = run(&mut sselab(&args));
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

#[test]
fn cert_command_prints_fingerprint_spki_and_how_to_trust_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_dir = dir.path().display().to_string();
    let output = run(&mut sselab(&[
        "cert",
        "--cert-dir",
        &cert_dir,
        "--san",
        "lab.test",
    ]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("sha256"), "{stdout}");
    assert!(
        stdout.contains("--ignore-certificate-errors-spki-list="),
        "{stdout}"
    );
    assert!(stdout.contains("curl --cacert"), "{stdout}");
    let material =
        sselab::server::certs::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))
            .expect("written certificate loads");
    assert!(stdout.contains(&material.fingerprint));
    assert!(stdout.contains(&material.spki_sha256));
}

#[test]
fn flags_can_come_from_sselab_environment_variables() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run(sselab(&["--https", "off", "--https-h1", "off"]).env("SSELAB_HTTP", &addr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains(&addr),
        "{stderr}"
    );
}

#[test]
fn a_bad_retry_jitter_from_the_environment_names_the_flag_and_the_range() {
    let output = run(sselab(&[]).env("SSELAB_RETRY_JITTER", "2"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--retry-jitter") && stderr.contains("from 0 to 1"),
        "{stderr}"
    );
}

#[test]
fn tabs_share_goes_into_the_pages_query() {
    let page = |url: &str, share: &[&str]| {
        let mut argv = vec!["sselab", "tabs", "--url", url];
        argv.extend(share);
        match <sselab::Cli as clap::Parser>::try_parse_from(argv)
            .expect("flags parse")
            .into_command()
        {
            sselab::Command::Tabs(args) => args.page_url(),
            other => panic!("not tabs: {other:?}"),
        }
    };
    let base = "http://127.0.0.1:8080/";
    assert_eq!(page(base, &[]), base, "no --share: the URL as given");
    assert_eq!(
        page(base, &["--share", "leader"]),
        "http://127.0.0.1:8080/?share=leader"
    );
    assert_eq!(
        page("http://h/?timeout=3#top", &["--share", "worker"]),
        "http://h/?timeout=3&share=worker#top"
    );
    assert_eq!(
        page("http://h/?", &["--share", "none"]),
        "http://h/?share=none"
    );
}
