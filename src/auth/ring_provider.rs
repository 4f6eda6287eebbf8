//! jsonwebtoken's cryptography done by ring, for the three algorithms sselab uses: HS256,
//! RS256 and ES256.
//!
//! jsonwebtoken 10+ leaves its crypto to a [`CryptoProvider`]; its built-in ones pull in
//! aws-lc or RustCrypto's `rsa`. sselab already carries ring for rustls, so this file plugs
//! ring in through the public provider interface: a few calls into `ring::hmac` and
//! `ring::signature`, nothing hand-rolled. Every other algorithm is refused as unsupported,
//! and the JWK helpers (sselab takes keys from PEM files, never from JWK sets) answer with an
//! error instead of jsonwebtoken's placeholder panics.
//!
//! Key bytes, as [`VerifyKey`](super::VerifyKey) and [`SignKey`](super::SignKey) store
//! them: HS256 the secret; RS256 verifying a PKCS#1 `RSAPublicKey` (or modulus and
//! exponent), signing a PKCS#8 or PKCS#1 private key; ES256 verifying an uncompressed P-256
//! point, signing a PKCS#8 private key.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use ring::{digest, hmac};

/// The provider; [`install`] makes it jsonwebtoken's process-wide default.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(no_jwk()),
        rsa_pub_components_from_public_key: |_| Err(no_jwk()),
        ec_pub_components_from_private_key: |_, _| Err(no_jwk()),
        ed_pub_components_from_private_key: |_, _: &EllipticCurve| Err(no_jwk()),
        compute_digest,
    },
};

/// Make [`RING_PROVIDER`] jsonwebtoken's default. Idempotent; cheap after the first call.
pub fn install() {
    // Err means a provider is already installed: ours from an earlier call (jsonwebtoken is
    // built with no crypto feature, so no other one can have appeared by itself).
    let _ = RING_PROVIDER.install_default();
}

fn no_jwk() -> Error {
    ErrorKind::Provider("sselab reads keys from PEM files, not JWKs".into()).into()
}

fn unsupported() -> Error {
    ErrorKind::UnsupportedAlgorithm.into()
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    let family = match algorithm {
        Algorithm::HS256 => AlgorithmFamily::Hmac,
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return Err(unsupported()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(match algorithm {
        Algorithm::HS256 => Box::new(Hs256(hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()))),
        Algorithm::RS256 => Box::new(Rs256Signer(rsa_key_pair(key.as_bytes())?)),
        _ => Box::new(Es256Signer(ec_key_pair(key.as_bytes())?)),
    })
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let wanted = match algorithm {
        Algorithm::HS256 => AlgorithmFamily::Hmac,
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return Err(unsupported()),
    };
    if key.family() != wanted {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(match (algorithm, key.kind()) {
        (Algorithm::HS256, DecodingKeyKind::SecretOrDer(secret)) => {
            Box::new(Hs256(hmac::Key::new(hmac::HMAC_SHA256, secret)))
        }
        (Algorithm::RS256, kind) => Box::new(Rs256Verifier(kind.clone())),
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
            Box::new(Es256Verifier(point.clone()))
        }
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    })
}

/// A PKCS#8 or PKCS#1 RSA private key that ring accepts (2048 to 8192 bits).
pub fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair, Error> {
    RsaKeyPair::from_pkcs8(der)
        .or_else(|_| RsaKeyPair::from_der(der))
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()).into())
}

/// A PKCS#8 P-256 private key.
pub fn ec_key_pair(pkcs8: &[u8]) -> Result<EcdsaKeyPair, Error> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey.into())
}

/// HS256 both ways: ring's HMAC, compared in constant time when verifying.
struct Hs256(hmac::Key);

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.0, message).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        hmac::verify(&self.0, message, signature).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

struct Rs256Signer(RsaKeyPair);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| signature::Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Rs256Verifier(DecodingKeyKind);

impl Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let checked =
            match &self.0 {
                DecodingKeyKind::SecretOrDer(pkcs1) => {
                    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs1)
                        .verify(message, signature)
                }
                DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKeyComponents { n, e }
                    .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature),
            };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Es256Signer(EcdsaKeyPair);

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.0
            .sign(&SystemRandom::new(), message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Es256Verifier(Vec<u8>);

impl Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(message, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from RFC 7515 (JSON Web Signature), Appendix A: tokens signed by someone
    //! else, so these check ring is wired right, not just that it agrees with itself.
    use jsonwebtoken::crypto;

    use super::*;

    /// RFC 7515 A.1: HS256, with its JWK `k` as the secret.
    #[test]
    fn rfc7515_hs256_example_verifies() {
        install();
        let secret = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
        let key = DecodingKey::from_base64_secret(&to_standard_base64(secret)).expect("key");
        let message = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(
            crypto::verify(signature, message.as_bytes(), &key, Algorithm::HS256).expect("runs")
        );
        let tampered = message.replace("eyJpc3Mi", "eyJpc3Ni");
        assert!(
            !crypto::verify(signature, tampered.as_bytes(), &key, Algorithm::HS256).expect("runs")
        );
    }

    /// RFC 7515 A.2: RS256 with the example's modulus and exponent.
    #[test]
    fn rfc7515_rs256_example_verifies() {
        install();
        let n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
        let key = DecodingKey::from_rsa_components(n, "AQAB").expect("key");
        let message = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
        assert!(
            crypto::verify(signature, message.as_bytes(), &key, Algorithm::RS256).expect("runs")
        );
        assert!(!crypto::verify(signature, b"other", &key, Algorithm::RS256).expect("runs"));
    }

    /// RFC 7515 A.3: ES256 with the example's public point.
    #[test]
    fn rfc7515_es256_example_verifies() {
        install();
        let key = DecodingKey::from_ec_components(
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        )
        .expect("key");
        let message = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        assert!(
            crypto::verify(signature, message.as_bytes(), &key, Algorithm::ES256).expect("runs")
        );
        assert!(!crypto::verify(signature, b"other", &key, Algorithm::ES256).expect("runs"));
    }

    #[test]
    fn other_algorithms_and_jwk_helpers_are_errors_not_panics() {
        install();
        let secret = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef").expect("key");
        for algorithm in [
            Algorithm::HS384,
            Algorithm::PS256,
            Algorithm::EdDSA,
            Algorithm::ES384,
        ] {
            assert!(
                crypto::verify("AA", b"m", &secret, algorithm).is_err(),
                "{algorithm:?}"
            );
        }
        assert!((RING_PROVIDER.key_utils.rsa_pub_components_from_public_key)(b"").is_err());
        assert!((RING_PROVIDER.key_utils.compute_digest)(b"abc", ThumbprintHash::SHA256).is_ok());
    }

    fn to_standard_base64(url_safe: &str) -> String {
        let mut text: String = url_safe
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        while !text.len().is_multiple_of(4) {
            text.push('=');
        }
        text
    }
}
