//! The `entente` binary with `spec.backend.type: graph` against an emulator on loopback: the CLI's
//! secret source (per-tenant environment variable), workload identity federation (a federated token
//! file), the inventory next to the local directory file, and convergence (a second plan changes
//! nothing).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::emulator::apps::{self, FederatedCredential};
use entente::emulator::jwt::SigningKey;
use entente::emulator::{self, EmulatorConfig, JwksSource, TrustedIssuer};
use serde_json::json;

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const ISSUER: &str = "https://oidc.cluster.example";
const SUBJECT: &str = "system:serviceaccount:entente:entente";
/// Exactly what the Graph backend asks for (docs/permissions.md).
const PERMISSIONS: &[&str] = entente::directory::graph::APPLY_PERMISSIONS;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// examples/ with both Tenants on the graph backend: Contoso signs in with a federated token file (or,
/// without one, a client secret), Fabrikam with a client secret.
fn write_manifests(dir: &Path, url: &str, contoso_client: &str, fabrikam_client: &str, token_file: Option<&Path>) {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(examples()).unwrap() {
        let e = e.unwrap();
        let mut text = std::fs::read_to_string(e.path()).unwrap();
        if e.file_name() == "tenants.yaml" {
            let backend = |client: &str, extra: &str| {
                format!(
                    "  backend:\n    type: graph\n    graph:\n      clientId: {client}\n      authorityHost: {url}\n      graphEndpoint: {url}\n{extra}"
                )
            };
            let wif = token_file.map_or_else(String::new, |f| format!("      federatedTokenFile: {}\n", f.display()));
            text = text.replace(
                "  initialDomain: contoso.onmicrosoft.com\n",
                &format!("  initialDomain: contoso.onmicrosoft.com\n{}", backend(contoso_client, &wif)),
            );
            text = text.replace(
                "  initialDomain: fabrikam.onmicrosoft.com\n",
                &format!("  initialDomain: fabrikam.onmicrosoft.com\n{}", backend(fabrikam_client, "")),
            );
            assert_eq!(text.matches("type: graph").count(), 2, "both tenants switched to graph");
        }
        std::fs::write(dir.join(e.file_name()), text).unwrap();
    }
}

fn run(workdir: &Path, envs: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("entente").unwrap();
    cmd.current_dir(workdir).env_remove("ENTENTE_GRAPH_CLIENT_SECRET").env_remove("ENTENTE_GRAPH_CLIENT_SECRET_FILE").args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_converges_examples_through_the_graph_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("world.db")).unwrap());
    for t in entente::manifest::load(&[examples()]).unwrap().desired.tenants {
        world
            .apply(&t.identity.tenant_id, &[entente::core::operation::Operation::CreateTenant { identity: t.identity.clone() }])
            .await
            .unwrap();
    }
    let key = SigningKey::generate().unwrap();
    let jwks = json!({"keys": [key.jwk()]});
    let config = EmulatorConfig {
        signing_key_pem: Some(key.to_pem().unwrap()),
        trusted_issuers: vec![TrustedIssuer { issuer: ISSUER.into(), jwks: JwksSource::Inline(jwks) }],
        ..EmulatorConfig::default()
    };
    let handle = emulator::start(world.clone(), config).await.unwrap();
    let permissions: Vec<String> = PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let contoso = apps::create_app(&world, CONTOSO, "entente", &permissions).unwrap();
    let fabrikam = apps::create_app(&world, FABRIKAM, "entente", &permissions).unwrap();
    let credential = FederatedCredential {
        name: "kubernetes".into(),
        issuer: ISSUER.into(),
        subject: SUBJECT.into(),
        audiences: vec![apps::DEFAULT_FEDERATION_AUDIENCE.into()],
    };
    apps::add_federated_credential(&world, &contoso.client_id, &credential).unwrap();
    let now = chrono::Utc::now().timestamp();
    let assertion = key.sign(&json!({"iss": ISSUER, "sub": SUBJECT, "aud": [apps::DEFAULT_FEDERATION_AUDIENCE],
                                     "iat": now, "nbf": now, "exp": now + 3600}));
    let token_file = tmp.path().join("federated-token");
    std::fs::write(&token_file, assertion).unwrap();

    let manifests = tmp.path().join("manifests");
    write_manifests(&manifests, &handle.url(), &contoso.client_id, &fabrikam.client_id, Some(&token_file));
    let envs = vec![(
        format!("ENTENTE_GRAPH_CLIENT_SECRET_{}", FABRIKAM.replace('-', "_").to_ascii_uppercase()),
        fabrikam.client_secret.clone(),
    )];
    let workdir = tmp.path().to_path_buf();
    let m = manifests.to_str().unwrap().to_string();
    let local = tmp.path().join("state/directory.db");
    let l = local.to_str().unwrap().to_string();

    let (w, e, a) = (workdir.clone(), envs.clone(), ["apply", "-f", &m, "--directory", &l].map(String::from));
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&w, &e, &a.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap();
    assert_eq!(code, 0, "apply failed:\n{out}\n{err}");
    assert!(out.contains("refused") && out.contains("DomainBlocked"), "{out}");
    // Graph's invitation answer has no user principal name: none is printed rather than an empty one.
    assert!(out.contains("    invited: user ") && !out.contains(" ()"), "{out}");
    assert!(out.contains("    redeem URL: http"), "the emulator's redeem links are web links: {out}");

    let (w, e, a) = (workdir.clone(), envs.clone(), ["plan", "-f", &m, "--directory", &l].map(String::from));
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&w, &e, &a.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap();
    assert_eq!(code, 0, "the second plan has changes:\n{out}\n{err}");

    assert!(tmp.path().join("state/inventory.db").exists(), "ownership records next to the local directory file");
    assert!(
        !local.exists() || LocalDirectory::open(&local).unwrap().tenants().unwrap().is_empty(),
        "nothing in the local backend"
    );
    let guests: Vec<String> = world.users(CONTOSO).unwrap().into_iter().map(|u| u.mail).collect();
    for mail in ["alice@fabrikam.com", "bob@fabrikam.com", "carol@adatum.com"] {
        assert!(guests.iter().any(|g| g.eq_ignore_ascii_case(mail)), "{mail} in {guests:?}");
    }
    assert_eq!(world.users(FABRIKAM).unwrap().len(), 1, "erin");

    // Without any credential for Fabrikam the CLI says what to set.
    let (w, a) = (workdir.clone(), ["plan", "-f", &m, "--directory", &l].map(String::from));
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(&w, &[], &a.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(format!("{out}{err}").contains("ENTENTE_GRAPH_CLIENT_SECRET"), "{out}\n{err}");
}

/// The permissions the README's emulator walkthrough grants (read from README.md, so the two cannot drift).
fn readme_permissions() -> Vec<String> {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("entente directory app create").expect("the README registers an app");
    let command: String = readme[start..].lines().take_while(|l| !l.starts_with("```")).collect::<Vec<_>>().join(" ");
    let words: Vec<&str> = command.split_whitespace().collect();
    words.windows(2).filter(|w| w[0] == "-p").map(|w| w[1].to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_permissions_plan_and_apply_the_examples_without_a_warning() {
    let permissions = readme_permissions();
    assert!(permissions.len() >= 5, "{permissions:?}");
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("world.db")).unwrap());
    for t in entente::manifest::load(&[examples()]).unwrap().desired.tenants {
        let create = entente::core::operation::Operation::CreateTenant { identity: t.identity.clone() };
        world.apply(&t.identity.tenant_id, &[create]).await.unwrap();
    }
    let key = SigningKey::generate().unwrap();
    let config = EmulatorConfig { signing_key_pem: Some(key.to_pem().unwrap()), ..EmulatorConfig::default() };
    let handle = emulator::start(world.clone(), config).await.unwrap();
    let contoso = apps::create_app(&world, CONTOSO, "entente", &permissions).unwrap();
    let fabrikam = apps::create_app(&world, FABRIKAM, "entente", &permissions).unwrap();
    let manifests = tmp.path().join("manifests");
    write_manifests(&manifests, &handle.url(), &contoso.client_id, &fabrikam.client_id, None);
    let secret = |id: &str| format!("ENTENTE_GRAPH_CLIENT_SECRET_{}", id.replace('-', "_").to_ascii_uppercase());
    let envs = vec![(secret(CONTOSO), contoso.client_secret.clone()), (secret(FABRIKAM), fabrikam.client_secret.clone())];
    let (m, l) = (manifests.display().to_string(), tmp.path().join("state/directory.db").display().to_string());
    for (command, expected) in [("plan", 1), ("apply", 0), ("plan", 0)] {
        let (w, e, a) = (tmp.path().to_path_buf(), envs.clone(), [command, "-f", &m, "--directory", &l].map(String::from));
        let (code, out, err) =
            tokio::task::spawn_blocking(move || run(&w, &e, &a.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap();
        assert_eq!(code, expected, "{command}:\n{out}\n{err}");
        assert!(!err.contains("WARN") && !err.contains("403"), "{command} with the README's permissions warns:\n{err}");
    }
}

/// `Backends` keeps one Graph directory per tenant (one token cache, one rate limiter) and builds a new one
/// when the backend settings change or the secret rotates (the controller reads the Secret each reconcile).
#[test]
fn graph_routes_are_cached_until_the_settings_or_the_secret_change() {
    use entente::api::tenant::{Backend, BackendKind, GraphBackend};
    use entente::engine::routes::{Backends, SecretSource};

    struct Fixed(&'static str);
    impl SecretSource for Fixed {
        fn client_secret(&self, _: &str, _: &GraphBackend) -> Result<Option<String>, String> {
            Ok(Some(self.0.to_string()))
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let backends = Backends::new(tmp.path().join("directory.db"));
    let graph = GraphBackend {
        client_id: "app".into(),
        authority_host: Some("http://127.0.0.1:9".into()),
        graph_endpoint: Some("http://127.0.0.1:9".into()),
        ..GraphBackend::default()
    };
    let backend = Backend { kind: BackendKind::Graph, graph: Some(graph.clone()) };
    let a = backends.route(CONTOSO, &backend, &Fixed("one")).unwrap();
    let b = backends.route(CONTOSO, &backend, &Fixed("one")).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "cached");
    let c = backends.route(CONTOSO, &backend, &Fixed("two")).unwrap();
    assert!(!Arc::ptr_eq(&a, &c), "a rotated secret builds a new directory");
    let other = Backend { kind: BackendKind::Graph, graph: Some(GraphBackend { client_id: "app-2".into(), ..graph }) };
    let d = backends.route(CONTOSO, &other, &Fixed("two")).unwrap();
    assert!(!Arc::ptr_eq(&c, &d), "a new client id builds a new directory");
    assert!(tmp.path().join("inventory.db").exists(), "the inventory sits next to the local directory file");
    let missing = Backend { kind: BackendKind::Graph, graph: None };
    let err = backends.route(CONTOSO, &missing, &Fixed("x")).err().expect("refused");
    assert!(err.contains("spec.backend.graph is required"), "{err}");
}
