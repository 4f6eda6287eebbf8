//! Keys from what an operator has: an HS256 secret, or a PEM file — the public key for the
//! server (RS256 or ES256, told apart by the key itself), the private key for `sselab token`.
//!
//! Every key is checked when it is loaded, so a wrong file stops the start with a reason
//! (a private key where the public half belongs, a 1024-bit RSA key, a P-384 curve, an
//! SEC1 file that needs converting) instead of failing every request later. Errors are one
//! line without the file name; the caller adds which flag and file they came from.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::ring_provider;

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// What ring verifies for RS256 (`RSA_PKCS1_2048_8192_SHA256`).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// How to turn a P-256 key in another format into the PKCS#8 that ring reads.
const TO_PKCS8: &str = "convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem`";

/// A key that checks signatures, and the one algorithm it accepts.
#[derive(Clone)]
pub struct VerifyKey {
    pub(super) algorithm: Algorithm,
    pub(super) key: DecodingKey,
}

/// A key that signs tokens, and its algorithm.
#[derive(Clone)]
pub struct SignKey {
    pub(super) algorithm: Algorithm,
    pub(super) key: EncodingKey,
}

// Never print key material, not even in a debug dump of the server's state.
impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyKey({:?})", self.algorithm)
    }
}

impl std::fmt::Debug for SignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignKey({:?})", self.algorithm)
    }
}

impl VerifyKey {
    /// An HS256 shared secret, used as its bytes.
    pub fn hs256(secret: &str) -> Result<Self, String> {
        check_secret(secret)?;
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self {
            algorithm: Algorithm::HS256,
            key,
        })
    }

    /// A PEM public key: `PUBLIC KEY` (RSA or P-256) or `RSA PUBLIC KEY`.
    pub fn from_public_pem(pem: &[u8]) -> Result<Self, String> {
        let (label, der) = read_pem(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => {
                let (_, spki) = SubjectPublicKeyInfo::from_der(&der)
                    .map_err(|_| "the PUBLIC KEY block is not a valid key".to_string())?;
                let algorithm = &spki.algorithm;
                let bits: &[u8] = &spki.subject_public_key.data;
                if algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
                    rsa_public(bits)
                } else if algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
                    let curve = algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
                    if curve.as_ref() != Some(&OID_EC_P256) {
                        let named = curve.map_or("an unnamed curve".into(), |c| c.to_id_string());
                        return Err(format!(
                            "an EC key on {named}; ES256 needs P-256 (prime256v1)"
                        ));
                    }
                    if bits.len() != 65 || bits[0] != 4 {
                        return Err(format!("a compressed P-256 point; {TO_PKCS8} -pubout"));
                    }
                    Ok(Self {
                        algorithm: Algorithm::ES256,
                        key: DecodingKey::from_ec_der(bits),
                    })
                } else {
                    Err(format!(
                        "a {} key; sselab verifies RS256 (RSA) and ES256 (P-256) tokens",
                        algorithm.algorithm.to_id_string()
                    ))
                }
            }
            "RSA PUBLIC KEY" => rsa_public(&der),
            label if label.contains("PRIVATE KEY") => Err(format!(
                "a {label}: the server needs only its public half \
                 (`openssl pkey -in KEY -pubout -out public.pem`)"
            )),
            other => Err(format!("a {other} block, not a PUBLIC KEY")),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl SignKey {
    /// An HS256 shared secret, used as its bytes.
    pub fn hs256(secret: &str) -> Result<Self, String> {
        check_secret(secret)?;
        let key = EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self {
            algorithm: Algorithm::HS256,
            key,
        })
    }

    /// A PEM private key: PKCS#8 `PRIVATE KEY` (RSA or P-256) or PKCS#1 `RSA PRIVATE KEY`.
    pub fn from_private_pem(pem: &[u8]) -> Result<Self, String> {
        let (label, der) = read_pem(pem)?;
        match label.as_str() {
            "PRIVATE KEY" | "RSA PRIVATE KEY" => {
                if ring_provider::rsa_key_pair(&der).is_ok() {
                    Ok(Self {
                        algorithm: Algorithm::RS256,
                        key: EncodingKey::from_rsa_der(&der),
                    })
                } else if label == "PRIVATE KEY" && ring_provider::ec_key_pair(&der).is_ok() {
                    Ok(Self {
                        algorithm: Algorithm::ES256,
                        key: EncodingKey::from_ec_der(&der),
                    })
                } else {
                    Err(format!(
                        "the {label} is neither RSA of 2048 to 8192 bits nor EC P-256"
                    ))
                }
            }
            "EC PRIVATE KEY" => Err(format!("an SEC1 EC PRIVATE KEY; {TO_PKCS8}")),
            "ENCRYPTED PRIVATE KEY" => Err(
                "an ENCRYPTED PRIVATE KEY: decrypt it first (`openssl pkcs8 -in KEY -out key.pem`)"
                    .into(),
            ),
            label if label.contains("PUBLIC KEY") => {
                Err(format!("a {label}: signing a token needs the private key"))
            }
            other => Err(format!("a {other} block, not a PRIVATE KEY")),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret has {} bytes; HS256 needs at least {MIN_SECRET_BYTES} \
             (RFC 7518 §3.2): try `openssl rand -base64 32`",
            secret.len()
        ));
    }
    Ok(())
}

/// The first PEM block: its label and its DER bytes.
fn read_pem(pem: &[u8]) -> Result<(String, Vec<u8>), String> {
    match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) => Ok((block.label, block.contents)),
        Err(_) => Err("not a PEM file (no -----BEGIN …----- block that decodes)".into()),
    }
}

/// A PKCS#1 `RSAPublicKey` whose modulus ring will verify with.
fn rsa_public(pkcs1: &[u8]) -> Result<VerifyKey, String> {
    let (_, rsa) =
        RSAPublicKey::from_der(pkcs1).map_err(|_| "the RSA key does not parse".to_string())?;
    let bits = modulus_bits(rsa.modulus);
    if !RSA_BITS.contains(&bits) {
        return Err(format!(
            "an RSA key of {bits} bits; RS256 here needs {} to {} bits",
            RSA_BITS.start(),
            RSA_BITS.end()
        ));
    }
    Ok(VerifyKey {
        algorithm: Algorithm::RS256,
        key: DecodingKey::from_rsa_der(pkcs1),
    })
}

/// Bits in a big-endian unsigned integer, ignoring DER's leading zero bytes.
fn modulus_bits(modulus: &[u8]) -> usize {
    let significant = match modulus.iter().position(|&b| b != 0) {
        Some(first) => &modulus[first..],
        None => return 0,
    };
    significant.len() * 8 - significant[0].leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_with_the_rule() {
        let error = VerifyKey::hs256("short").expect_err("too short");
        assert!(error.contains("5 bytes") && error.contains("32"), "{error}");
        assert!(SignKey::hs256(&"x".repeat(31)).is_err());
        assert!(VerifyKey::hs256(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn modulus_bits_skip_leading_zeros() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn garbage_is_not_a_key() {
        for garbage in [
            &b""[..],
            b"hello",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(VerifyKey::from_public_pem(garbage).is_err());
            assert!(SignKey::from_private_pem(garbage).is_err());
        }
    }

    #[test]
    fn a_generated_p256_pair_loads_each_half_where_it_belongs() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let private = pair.serialize_pem();
        let public = pair.public_key_pem();
        assert_eq!(
            SignKey::from_private_pem(private.as_bytes())
                .expect("private")
                .algorithm(),
            Algorithm::ES256
        );
        assert_eq!(
            VerifyKey::from_public_pem(public.as_bytes())
                .expect("public")
                .algorithm(),
            Algorithm::ES256
        );
        let swapped = VerifyKey::from_public_pem(private.as_bytes()).expect_err("private");
        assert!(swapped.contains("public half"), "{swapped}");
        let swapped = SignKey::from_private_pem(public.as_bytes()).expect_err("public");
        assert!(swapped.contains("needs the private key"), "{swapped}");
    }

    #[test]
    fn other_curves_are_named() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let error =
            VerifyKey::from_public_pem(pair.public_key_pem().as_bytes()).expect_err("P-384");
        assert!(
            error.contains("1.3.132.0.34") && error.contains("P-256"),
            "{error}"
        );
    }
}
