//! The emulator over https, as Microsoft's token libraries and SDKs need it: a local CA kept beside the
//! directory file (its key 0600, the same CA across restarts), a server certificate for the loopback
//! names, links and issuers in https, and signing keys published with their certificate (`x5c`, `x5t`).

use std::sync::Arc;

use entente::directory::local::LocalDirectory;
use entente::emulator::{self, EmulatorConfig, tls};

#[tokio::test]
async fn the_emulator_serves_https_with_a_local_ca_that_clients_trust() {
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("world.db")).unwrap());
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    for t in entente::manifest::load(&[examples]).unwrap().desired.tenants {
        let op = entente::core::operation::Operation::CreateTenant { identity: t.identity.clone() };
        entente::directory::Directory::apply(world.as_ref(), &t.identity.tenant_id, &[op]).await.unwrap();
    }
    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    let (identity, ca_file) = tls::self_signed(&tmp.path().join("tls"), &hosts).unwrap();
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tls::ca_files(&tmp.path().join("tls")).1).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is the owner's only");
    }
    let (_, again) = tls::self_signed(&tmp.path().join("tls"), &hosts).unwrap();
    assert_eq!(std::fs::read_to_string(again).unwrap(), ca, "the same CA across restarts");

    let handle = emulator::start(world, EmulatorConfig { tls: Some(identity), ..EmulatorConfig::default() }).await.unwrap();
    assert!(handle.url().starts_with("https://127.0.0.1:"), "{}", handle.url());
    let client =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()).build().unwrap();
    let tenant = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
    let meta: serde_json::Value = client
        .get(format!("{}/{tenant}/v2.0/.well-known/openid-configuration", handle.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], format!("{}/{tenant}/v2.0", handle.url()));
    let keys: serde_json::Value = client.get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let key = &keys["keys"][0];
    assert_eq!(key["use"], "sig");
    assert!(key["x5c"][0].as_str().is_some_and(|c| c.len() > 100), "{key}");
    assert!(key["x5t"].as_str().is_some_and(|t| t.len() == 27), "{key}");

    // A client that does not trust the CA is refused at the handshake.
    let untrusting = reqwest::Client::new();
    assert!(untrusting.get(format!("{}/{tenant}/discovery/v2.0/keys", handle.url())).send().await.is_err());
}
