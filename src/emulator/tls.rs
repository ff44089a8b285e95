//! TLS for the emulator. Microsoft's token libraries (MSAL, azure-identity) refuse an `http://`
//! authority and the Graph SDKs attach tokens only to https URLs, so a client that is to run unchanged
//! needs https. Either the caller's certificate and key, or a local certificate authority kept beside
//! the directory file (its key readable by the owner only) that issues a fresh server certificate for
//! the loopback names at each start: clients trust the CA file once (`REQUESTS_CA_BUNDLE`,
//! `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`) and keep trusting it across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::EmulatorError;

/// A server certificate chain and its private key, PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsIdentity").field("cert_chain_pem", &format!("{} byte(s)", self.cert_chain_pem.len())).finish()
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Config(format!("{what}: {e}"))
}

/// Reads a certificate chain and key given by the user.
pub fn from_files(cert: &Path, key: &Path) -> Result<TlsIdentity, EmulatorError> {
    let read = |p: &Path| {
        crate::files::read_regular_text(p, crate::files::MAX_SECRET_BYTES)
            .map_err(|e| config_error(&format!("reading {}", p.display()), e))
    };
    Ok(TlsIdentity { cert_chain_pem: read(cert)?, key_pem: read(key)? })
}

/// The local CA's files in `dir`: `ca.pem` (to trust) and `ca-key.pem` (0600).
pub fn ca_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca-key.pem"))
}

fn ca_params() -> Result<CertificateParams, EmulatorError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| config_error("CA parameters", e))?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.distinguished_name.push(DnType::CommonName, "entente Graph emulator local CA");
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    Ok(p)
}

/// A server certificate for `hosts` (DNS names or IP addresses) issued by the local CA in `dir`,
/// which is created on first use. Returns the identity and the CA file clients must trust.
pub fn self_signed(dir: &Path, hosts: &[String]) -> Result<(TlsIdentity, PathBuf), EmulatorError> {
    let (ca_file, ca_key_file) = ca_files(dir);
    let ca_key = if ca_file.exists() && ca_key_file.exists() {
        let pem = crate::files::read_regular_text(&ca_key_file, crate::files::MAX_SECRET_BYTES)
            .map_err(|e| config_error("reading the CA key", e))?;
        KeyPair::from_pem(&pem).map_err(|e| config_error("the CA key", e))?
    } else {
        std::fs::create_dir_all(dir).map_err(|e| config_error(&format!("creating {}", dir.display()), e))?;
        let key = KeyPair::generate().map_err(|e| config_error("generating the CA key", e))?;
        let cert = ca_params()?.self_signed(&key).map_err(|e| config_error("signing the CA", e))?;
        write_private(&ca_key_file, &key.serialize_pem())?;
        std::fs::write(&ca_file, cert.pem()).map_err(|e| config_error("writing the CA certificate", e))?;
        key
    };
    // The same name, usages and key identifier as the stored CA certificate, so the chain verifies.
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(|e| config_error("certificate parameters", e))?;
    leaf.distinguished_name.push(DnType::CommonName, "entente Graph emulator");
    leaf.subject_alt_names = hosts
        .iter()
        .map(|h| match h.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => h.clone().try_into().map(SanType::DnsName).map_err(|e| config_error(&format!("host name {h}"), e)),
        })
        .collect::<Result<_, _>>()?;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    // Midnight UTC of a day, as rcgen takes it.
    let day = |t: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    };
    leaf.not_before = day(chrono::Utc::now() - chrono::Duration::days(1));
    leaf.not_after = day(chrono::Utc::now() + chrono::Duration::days(90));
    let key = KeyPair::generate().map_err(|e| config_error("generating the server key", e))?;
    let cert = leaf.signed_by(&key, &issuer).map_err(|e| config_error("signing the server certificate", e))?;
    let ca_pem = crate::files::read_regular_text(&ca_file, crate::files::MAX_SECRET_BYTES)
        .map_err(|e| config_error("reading the CA certificate", e))?;
    Ok((TlsIdentity { cert_chain_pem: format!("{}{ca_pem}", cert.pem()), key_pem: key.serialize_pem() }, ca_file))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<(), EmulatorError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| config_error(&format!("writing {}", path.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| config_error(&format!("writing {}", path.display()), e))
}

/// The acceptor serving `identity` (HTTP/1.1 only, as the emulator speaks).
pub fn acceptor(identity: &TlsIdentity) -> Result<TlsAcceptor, EmulatorError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(identity.cert_chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| config_error("the TLS certificate", e))?;
    if certs.is_empty() {
        return Err(EmulatorError::Config("the TLS certificate file holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| config_error("the TLS key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| config_error("the TLS certificate and key", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
