//! The private key a backend signs its SMART client assertions with (RS384 or ES384, PKCS#8 PEM),
//! the public JWK the server is given to check them, and the compact JWS itself.
//!
//! The key's `kid` defaults to its RFC 7638 thumbprint, so `ehrqa key jwks` and the assertions
//! name the key the same way without anyone choosing a name.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: not a PEM private key (expected -----BEGIN PRIVATE KEY-----)")]
    NotPem(String),
    #[error(
        "{0}: a {1} key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem`"
    )]
    Traditional(String, &'static str),
    #[error("{0}: neither an RSA key (RS384) nor a P-384 EC key (ES384): {1}")]
    Unsupported(String, String),
    #[error("signing failed")]
    Sign,
    #[error("no randomness to make a key")]
    Random,
}

/// The signature algorithm a key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs384,
    Es384,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs384 => "RS384",
            Self::Es384 => "ES384",
        }
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A loaded signing key with the `kid` its assertions carry.
pub struct SigningKey {
    pair: Pair,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, kid {})", self.alg().as_str(), self.kid)
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM file; `kid` overrides the thumbprint.
    pub fn load(path: &Path, kid: Option<&str>) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read(name.clone(), e))?;
        Self::from_pem(&name, &text, kid)
    }

    pub fn from_pem(name: &str, pem: &str, kid: Option<&str>) -> Result<Self, KeyError> {
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return Err(KeyError::Traditional(name.into(), "PKCS#1 RSA"));
        }
        if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            return Err(KeyError::Traditional(name.into(), "SEC1 EC"));
        }
        let der = pem_body(pem, "PRIVATE KEY").ok_or_else(|| KeyError::NotPem(name.into()))?;
        Self::from_pkcs8(name, &der, kid)
    }

    fn from_pkcs8(name: &str, der: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        let ec =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &SystemRandom::new());
        let pair = match ec {
            Ok(k) => Pair::Ec(k),
            Err(ec_err) => match RsaKeyPair::from_pkcs8(der) {
                Ok(k) => Pair::Rsa(k),
                Err(rsa_err) => {
                    return Err(KeyError::Unsupported(name.into(), format!("{ec_err}; {rsa_err}")))
                }
            },
        };
        let mut key = Self { pair, kid: String::new() };
        key.kid = kid.map_or_else(|| key.thumbprint(), str::to_owned);
        Ok(key)
    }

    /// A new P-384 key as PKCS#8 PEM (ring makes EC keys; RSA keys come from `openssl`).
    pub fn generate_es384_pem() -> Result<String, KeyError> {
        let der =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Random)?;
        Ok(to_pem("PRIVATE KEY", der.as_ref()))
    }

    pub fn alg(&self) -> Alg {
        match self.pair {
            Pair::Rsa(_) => Alg::Rs384,
            Pair::Ec(_) => Alg::Es384,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> Json {
        let mut jwk = self.key_members();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg().as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    /// Only the members RFC 7638 hashes, in its (lexicographic) order.
    fn key_members(&self) -> Json {
        match &self.pair {
            Pair::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({ "e": b64url(unsigned(&c.e)), "kty": "RSA", "n": b64url(unsigned(&c.n)) })
            }
            Pair::Ec(k) => {
                // An uncompressed point: 0x04, x, y.
                let point = &k.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                json!({ "crv": "P-384", "kty": "EC", "x": b64url(x), "y": b64url(y) })
            }
        }
    }

    /// RFC 7638: SHA-256 of the required members, serialised without spaces in key order.
    fn thumbprint(&self) -> String {
        // serde_json's maps keep keys sorted, which is the order RFC 7638 asks for.
        let canonical = self.key_members().to_string();
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    /// A compact JWS of `claims` (header: alg, typ JWT, kid).
    pub fn sign_jwt(&self, claims: &Json) -> Result<String, KeyError> {
        let header = json!({ "alg": self.alg().as_str(), "kid": self.kid, "typ": "JWT" });
        let input =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA384, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                sig
            }
            Pair::Ec(k) => k.sign(&rng, input.as_bytes()).map_err(|_| KeyError::Sign)?.as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64url(&sig)))
    }
}

/// A JWK Set of these keys.
pub fn jwks(keys: &[SigningKey]) -> Json {
    json!({ "keys": keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A big-endian integer without leading zero bytes (JWK integers are minimal).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// The DER inside the first `-----BEGIN {label}-----` block.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_jwk_verifies() {
        let pem = SigningKey::generate_es384_pem().unwrap();
        let key = SigningKey::from_pem("k", &pem, None).unwrap();
        let jwt = key.sign_jwt(&json!({ "iss": "me" })).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let jwk = key.public_jwk();
        let coord = |m: &str| URL_SAFE_NO_PAD.decode(jwk[m].as_str().unwrap()).unwrap();
        let mut point = vec![4u8];
        point.extend(coord("x"));
        point.extend(coord("y"));
        let public = signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point);
        public.verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(key.kid().len(), 43, "a base64url SHA-256");
    }

    #[test]
    fn traditional_and_foreign_pem_is_refused_with_the_fix() {
        let e = SigningKey::from_pem("k.pem", "-----BEGIN RSA PRIVATE KEY-----\nAA==\n", None).unwrap_err();
        assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
        let e = SigningKey::from_pem("k.pem", "hello", None).unwrap_err();
        assert!(matches!(e, KeyError::NotPem(_)), "{e}");
    }

    #[test]
    fn the_thumbprint_follows_rfc_7638() {
        // RFC 7638, section 3.1's example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = json!({ "e": "AQAB", "kty": "RSA", "n": n }).to_string();
        assert_eq!(
            b64url(&Sha256::digest(canonical.as_bytes())),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
