//! The self-signed certificate: generated on first start, reused after, private key kept
//! private, and a broken file reported by name instead of overwritten.

use std::os::unix::fs::PermissionsExt;

use sselab::server::certs::{self, CertRequest};

use crate::util::bin;

fn request(dir: &std::path::Path) -> CertRequest<'_> {
    CertRequest {
        dir,
        extra_sans: &[],
        regenerate: false,
    }
}

#[test]
fn generated_on_first_start_and_reused_on_the_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs_dir = dir.path().join("nested/certs"); // the directory is created
    let first = certs::load_or_generate(&request(&certs_dir)).expect("first start");
    assert!(first.generated);
    let second = certs::load_or_generate(&request(&certs_dir)).expect("second start");
    assert!(!second.generated, "an intact certificate is reused");
    assert_eq!(first.fingerprint, second.fingerprint);
    assert_eq!(first.spki_sha256, second.spki_sha256);
    assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "AB:CD:… over 32 bytes");

    let mode = std::fs::metadata(certs_dir.join("key.pem"))
        .expect("key.pem")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the private key is private");
}

#[test]
fn a_new_name_or_regen_flag_makes_a_new_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = certs::load_or_generate(&request(dir.path())).expect("first");
    let extra = ["lab.test".to_string()];
    let wider = certs::load_or_generate(&CertRequest {
        extra_sans: &extra,
        ..request(dir.path())
    })
    .expect("with --san lab.test");
    assert!(wider.generated, "an uncovered name needs a new certificate");
    assert_ne!(first.fingerprint, wider.fingerprint);
    let again = certs::load_or_generate(&CertRequest {
        extra_sans: &extra,
        ..request(dir.path())
    })
    .expect("again");
    assert_eq!(again.fingerprint, wider.fingerprint);
    let regen = certs::load_or_generate(&CertRequest {
        regenerate: true,
        ..request(dir.path())
    })
    .expect("--regen-cert");
    assert_ne!(regen.fingerprint, wider.fingerprint);
}

#[test]
fn corrupt_files_are_a_clear_error_and_are_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    certs::load_or_generate(&request(dir.path())).expect("first");
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, "not a certificate").expect("corrupt it");

    let error = certs::load_or_generate(&request(dir.path())).expect_err("corrupt cert");
    let message = format!("{error:#}");
    assert!(
        message.contains(&cert_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("--regen-cert"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&cert_path).expect("still there"),
        "not a certificate"
    );

    // A key that belongs to another certificate is named too.
    let other = tempfile::tempdir().expect("temp dir");
    certs::load_or_generate(&request(other.path())).expect("other");
    certs::load_or_generate(&CertRequest {
        regenerate: true,
        ..request(dir.path())
    })
    .expect("regenerated");
    std::fs::copy(other.path().join("key.pem"), dir.path().join("key.pem")).expect("swap key");
    let error = certs::load_or_generate(&request(dir.path())).expect_err("mismatched key");
    let message = format!("{error:#}");
    assert!(
        message.contains("key.pem") && message.contains("does not belong"),
        "{message}"
    );
}

#[test]
fn a_bad_san_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = ["not a name!".to_string()];
    let error = certs::load_or_generate(&CertRequest {
        extra_sans: &extra,
        ..request(dir.path())
    })
    .expect_err("bad --san");
    assert!(format!("{error:#}").contains("--san"), "{error:#}");
}

/// `sselab shot` and `tabs` trust the certificate in --cert-dir: a broken one stops them with
/// the file's name, before any browser starts, instead of a page that later fails to load.
#[test]
fn a_browser_command_names_a_corrupt_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    certs::load_or_generate(&request(dir.path())).expect("a certificate");
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&cert_path, "not a certificate").expect("corrupt it");
    let cert_dir = dir.path().to_str().expect("utf-8 path");
    let out = dir.path().join("shot.png");

    let output = bin::run(&mut bin::sselab(&[
        "shot",
        "--url",
        "http://127.0.0.1:9/",
        "--out",
        out.to_str().expect("utf-8 path"),
        "--cert-dir",
        cert_dir,
    ]));

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&cert_path.display().to_string()),
        "{stderr}"
    );
    assert!(!out.exists(), "no screenshot was taken");
}
