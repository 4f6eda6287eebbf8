//! The self-signed certificate: reuse it when it is sound, generate it with rcgen when it is
//! missing, and say exactly which file is wrong when it is not.
//!
//! Browsers only speak HTTP/2 over TLS, so the lab needs a certificate; a person trusts it with
//! `curl --cacert` or Chromium's SPKI allow-list. This module never overwrites a file it cannot
//! read or parse: that takes an explicit `--regen-cert`.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine;
use chrono::{Datelike, Days, Utc};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Names every certificate covers, so `https://localhost` and both loopback literals just work.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
/// A generated certificate is valid this long; an expired one is replaced on start.
const VALIDITY_DAYS: u64 = 365;

/// A certificate and key ready for rustls, plus what a person needs to trust them.
#[derive(Debug, Clone)]
pub struct CertMaterial {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    /// SHA-256 of the certificate, `AB:CD:…`, as browsers show it.
    pub fingerprint: String,
    /// base64 SHA-256 of the SubjectPublicKeyInfo, for `--ignore-certificate-errors-spki-list`.
    pub spki_sha256: String,
    /// True when this call wrote new files.
    pub generated: bool,
}

/// What a start needs: the directory, the extra names, and whether to start over.
#[derive(Debug, Clone)]
pub struct CertRequest<'a> {
    pub dir: &'a Path,
    pub extra_sans: &'a [String],
    pub regenerate: bool,
}

impl CertRequest<'_> {
    /// The requested names: the defaults first, then `--san` values, without repeats.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
        for name in self.extra_sans {
            let name = name.trim().to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// Reuse `cert.pem`/`key.pem` when present, sound and covering the names; otherwise generate.
pub fn load_or_generate(request: &CertRequest<'_>) -> anyhow::Result<CertMaterial> {
    let cert_path = request.dir.join(CERT_FILE);
    let key_path = request.dir.join(KEY_FILE);
    let names = request.names();
    let present = cert_path.exists() || key_path.exists();

    if present && !request.regenerate {
        let material = load(&cert_path, &key_path)?;
        match why_not_reusable(&material, &names)? {
            None => return Ok(material),
            Some(reason) => tracing::warn!(
                cert = %cert_path.display(),
                "generating a new certificate: {reason}"
            ),
        }
    }
    generate(request.dir, &names)
}

/// Always write a fresh certificate (the `sselab cert` command).
pub fn generate(dir: &Path, names: &[String]) -> anyhow::Result<CertMaterial> {
    for name in names {
        if name.parse::<IpAddr>().is_err() && !is_dns_name(name) {
            bail!("--san `{name}` is neither an IP address nor a DNS name");
        }
    }
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).context("building certificate parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sselab self-signed");
    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);
    let until = today + Days::new(VALIDITY_DAYS);
    // Months and days always fit in u8.
    let ymd = |date: chrono::NaiveDate| {
        rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
    };
    params.not_before = ymd(yesterday);
    params.not_after = ymd(until);
    let key_pair = rcgen::KeyPair::generate().context("generating a key pair")?;
    let cert = params
        .self_signed(&key_pair)
        .context("signing the certificate")?;

    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create certificate directory {}", dir.display()))?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    // Key first: a crash between the two writes leaves a key without a matching cert, which
    // load() reports rather than serving a certificate nobody holds the key for.
    write_atomically(&key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), names = ?names, "generated a self-signed certificate");

    let mut material = load(&cert_path, &key_path)?;
    material.generated = true;
    Ok(material)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

fn regen_hint(path: &Path, problem: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: {problem}; fix or remove it, or start with --regen-cert to replace it",
        path.display()
    )
}

/// Read and check both files, naming the one that is wrong.
pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<CertMaterial> {
    let cert_pem = fs::read(cert_path).map_err(|e| regen_hint(cert_path, e))?;
    let key_pem = fs::read(key_path).map_err(|e| regen_hint(key_path, e))?;

    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| regen_hint(cert_path, format!("not a PEM certificate ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(regen_hint(cert_path, "holds no certificate"));
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| regen_hint(key_path, format!("not a PEM private key ({e})")))?;

    let (_, parsed) = X509Certificate::from_der(leaf)
        .map_err(|e| regen_hint(cert_path, format!("not a valid X.509 certificate ({e})")))?;
    let spki = parsed.tbs_certificate.subject_pki.raw;

    // The key must belong to the certificate, or every handshake would fail later.
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| regen_hint(key_path, format!("unusable private key ({e})")))?;
    match signing_key.public_key() {
        Some(public) if public.as_ref() == spki => {}
        Some(_) => {
            return Err(regen_hint(
                key_path,
                format!("does not belong to {}", cert_path.display()),
            ));
        }
        None => return Err(regen_hint(key_path, "its public key cannot be read")),
    }

    Ok(CertMaterial {
        cert_path: cert_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        fingerprint: colon_hex(&sha256(leaf)),
        spki_sha256: base64::engine::general_purpose::STANDARD.encode(sha256(spki)),
        chain,
        key: Arc::new(key),
        generated: false,
    })
}

/// `Some(reason)` when a readable certificate should still be replaced.
fn why_not_reusable(material: &CertMaterial, names: &[String]) -> anyhow::Result<Option<String>> {
    let (_, parsed) = X509Certificate::from_der(&material.chain[0])
        .map_err(|e| regen_hint(&material.cert_path, e))?;
    if !parsed.validity().is_valid() {
        return Ok(Some(
            "the certificate has expired or is not yet valid".into(),
        ));
    }
    let mut covered: Vec<String> = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => covered.push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        covered.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            let wanted = match name.parse::<IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => name.to_ascii_lowercase(),
            };
            !covered.contains(&wanted)
        })
        .collect();
    Ok((!missing.is_empty()).then(|| format!("it does not cover {missing:?}")))
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Write to a temporary file in the same directory, sync, then rename over the target.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("pem.tmp");
    let result = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// How to trust the certificate, for `sselab cert` and the start banner.
pub fn trust_instructions(material: &CertMaterial) -> String {
    format!(
        "certificate  {cert}\n\
         sha256       {fp}\n\
         spki sha256  {spki}\n\
         trust it:    curl --cacert {cert} https://localhost:8443/proto\n\
         \x20            chromium --ignore-certificate-errors-spki-list={spki}",
        cert = material.cert_path.display(),
        fp = material.fingerprint,
        spki = material.spki_sha256,
    )
}
