//! RS256 JSON Web Tokens (RFC 7515/7519) and JSON Web Keys (RFC 7517): what the emulator signs its
//! access tokens with, and how it checks the external tokens presented as federated client assertions.
//!
//! Deliberately small: compact serialization only, RS256 only (Entra's access tokens and the usual
//! workload identity issuers — Kubernetes, GitHub Actions — use it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey as Pkcs1SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0:?} is not RS256")]
    Algorithm(String),
    #[error("no signing key {0:?} is known")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    Signature,
    #[error("{0}")]
    Key(String),
}

/// An RS256 signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    private: RsaPrivateKey,
    /// A self-signed X.509 certificate of the public key (DER), made on first use: Entra publishes
    /// its keys with one (`x5c`, `x5t`), and some clients read the key from it.
    certificate: std::sync::OnceLock<Option<Vec<u8>>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key. Its id is the base64url SHA-256 of the public key (a JWK thumbprint-like id).
    pub fn generate() -> Result<Self, JwtError> {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| JwtError::Key(e.to_string()))?;
        Ok(Self::from_key(private))
    }

    fn from_key(private: RsaPrivateKey) -> Self {
        let public = private.to_public_key();
        let mut h = Sha256::new();
        h.update(public.n().to_bytes_be());
        h.update(public.e().to_bytes_be());
        let kid = URL_SAFE_NO_PAD.encode(&h.finalize()[..20]);
        Self { kid, private, certificate: std::sync::OnceLock::new() }
    }

    fn certificate(&self) -> Option<&[u8]> {
        self.certificate
            .get_or_init(|| {
                let der = self.private.to_pkcs8_der().ok()?;
                let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
                let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).ok()?;
                let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
                params.distinguished_name.push(rcgen::DnType::CommonName, "entente Graph emulator token signing");
                params.not_before = rcgen::date_time_ymd(2025, 1, 1);
                params.not_after = rcgen::date_time_ymd(2035, 1, 1);
                Some(params.self_signed(&key).ok()?.der().to_vec())
            })
            .as_deref()
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| JwtError::Key(format!("reading a PKCS#8 RSA key: {e}")))?;
        Ok(Self::from_key(private))
    }

    /// As PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, JwtError> {
        self.private.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()).map_err(|e| JwtError::Key(e.to_string()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The public JWK (`kty`, `use`, `kid`, `n`, `e`, `alg`, and as Entra publishes them `x5t`, the
    /// certificate's SHA-1 thumbprint, and `x5c`, the certificate).
    pub fn jwk(&self) -> Value {
        let public = self.public_key();
        let mut jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        if let Some(der) = self.certificate() {
            use sha1::Digest as _;
            jwk["x5t"] = json!(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der)));
            jwk["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(der)]);
        }
        jwk
    }

    /// A compact RS256 JWT of `claims`, with `kid` in its header.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": self.kid });
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let signer = Pkcs1SigningKey::<Sha256>::new(self.private.clone());
        let signature = signer.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON values always serialize"))
}

/// A token split into its parts, signature not yet checked.
#[derive(Clone, Debug)]
pub struct Unverified {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed("expected three dot-separated parts".into()));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|e| JwtError::Malformed(format!("the {what} is not base64url: {e}")))
        };
        let header: Value = serde_json::from_slice(&decode(h, "header")?)
            .map_err(|e| JwtError::Malformed(format!("the header is not JSON: {e}")))?;
        let claims: Value = serde_json::from_slice(&decode(c, "payload")?)
            .map_err(|e| JwtError::Malformed(format!("the payload is not JSON: {e}")))?;
        if !header.is_object() || !claims.is_object() {
            return Err(JwtError::Malformed("header and payload must be JSON objects".into()));
        }
        Ok(Self { header, claims, signing_input: format!("{h}.{c}"), signature: decode(s, "signature")? })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Checks the RS256 signature with the key named by the header's `kid` among `keys`
    /// (or the only key, when the token names none).
    pub fn verify(&self, keys: &[(String, RsaPublicKey)]) -> Result<(), JwtError> {
        let alg = self.header.get("alg").and_then(Value::as_str).unwrap_or_default();
        if alg != "RS256" {
            return Err(JwtError::Algorithm(alg.to_string()));
        }
        let key = match self.kid() {
            Some(kid) => keys.iter().find(|(k, _)| k == kid).ok_or_else(|| JwtError::UnknownKey(kid.to_string()))?,
            None if keys.len() == 1 => &keys[0],
            None => return Err(JwtError::UnknownKey(String::new())),
        };
        let signature = Signature::try_from(self.signature.as_slice()).map_err(|_| JwtError::Signature)?;
        VerifyingKey::<Sha256>::new(key.1.clone())
            .verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)
    }

    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn num_claim(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    }

    /// `aud` as a list (it may be a string or an array).
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }
}

/// The RSA signing keys of a JWKS document (`{"keys": [...]}`), by `kid`. Keys that are not RSA
/// signing keys are skipped.
pub fn jwks_keys(jwks: &Value) -> Result<Vec<(String, RsaPublicKey)>, JwtError> {
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or_else(|| JwtError::Key("a JWKS needs a \"keys\" array".into()))?;
    let mut out = Vec::new();
    for k in keys {
        if k.get("kty").and_then(Value::as_str) != Some("RSA") {
            continue;
        }
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let field = |name: &str| -> Result<BigUint, JwtError> {
            let s = k.get(name).and_then(Value::as_str).ok_or_else(|| JwtError::Key(format!("an RSA JWK needs {name:?}")))?;
            let bytes = URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| JwtError::Key(format!("JWK {name:?} is not base64url: {e}")))?;
            Ok(BigUint::from_bytes_be(&bytes))
        };
        let public = RsaPublicKey::new(field("n")?, field("e")?).map_err(|e| JwtError::Key(e.to_string()))?;
        let kid = k.get("kid").and_then(Value::as_str).unwrap_or_default().to_string();
        out.push((kid, public));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_tamper() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign(&json!({ "sub": "x", "aud": ["a", "b"] }));
        let parsed = Unverified::parse(&token).unwrap();
        let keys = jwks_keys(&json!({ "keys": [key.jwk()] })).unwrap();
        parsed.verify(&keys).unwrap();
        assert_eq!(parsed.audiences(), vec!["a", "b"]);

        let pem = key.to_pem().unwrap();
        assert_eq!(SigningKey::from_pem(&pem).unwrap().kid(), key.kid());

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64_json(&json!({ "sub": "y" }));
        parts[1] = &forged;
        assert_eq!(Unverified::parse(&parts.join(".")).unwrap().verify(&keys), Err(JwtError::Signature));
        assert!(matches!(Unverified::parse("a.b"), Err(JwtError::Malformed(_))));
    }
}
