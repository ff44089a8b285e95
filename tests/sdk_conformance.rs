//! Conformance of the emulator with Microsoft's own Python clients: `tests/sdk/conformance.py` drives
//! the emulator over https with msal, azure-identity and msgraph-sdk (kiota), unchanged apart from
//! trusting the local CA, turning off instance discovery and pointing the Graph client at the
//! emulator. Runs only when `ENTENTE_SDK_PYTHON` names a Python with `tests/sdk/requirements.txt`
//! installed (`.ci/run` makes one in `target/sdk-venv`), and reports itself skipped otherwise.
//!
//!   python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt
//!   ENTENTE_SDK_PYTHON=target/sdk-venv/bin/python cargo test --test sdk_conformance -- --nocapture
//!
//! The world: the examples' tenants (contoso, fabrikam) plus an external tenant (shop, for the
//! company branding only external tenants have), an app in each of them holding every
//! permission the emulator knows, and three emulators over it sharing one CA: the main one (strict
//! contract checking, no throttling), a throttled one (a tiny resource-unit budget, `Retry-After` in
//! whole seconds) for the SDK's retry handler, and one whose delta tokens expire after a second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use entente::core::operation::Operation;
use entente::core::tenant_profile::TenantType;
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::emulator::{self, EmulatorConfig, Limits, Rate, RetryAfterFormat, apps, tls};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const SHOP: &str = "44444444-4444-4444-4444-444444444444";

/// The script's whole run, at most.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

async fn world(path: &std::path::Path) -> Arc<LocalDirectory> {
    let world = Arc::new(LocalDirectory::open(path).unwrap());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for t in entente::manifest::load(&[root.join("examples")]).unwrap().desired.tenants {
        let op = Operation::CreateTenant { identity: t.identity.clone() };
        world.apply(&t.identity.tenant_id, &[op]).await.unwrap();
    }
    let shop = entente::core::model::TenantIdentity {
        tenant_id: SHOP.into(),
        initial_domain: "shop.onmicrosoft.com".into(),
        display_name: "Shop".into(),
        cloud: entente::core::model::Cloud::Global,
        verified_domains: ["shop.com".to_string()].into(),
    };
    let external =
        Operation::ConfigureTenantExperience { tenant_type: TenantType::External, branding: None, self_service_account: None };
    world.apply(SHOP, &[Operation::CreateTenant { identity: shop }, external]).await.unwrap();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsofts_python_sdks_work_against_the_emulator() {
    let Ok(python) = std::env::var("ENTENTE_SDK_PYTHON") else {
        println!(
            "skipped: set ENTENTE_SDK_PYTHON to a Python with tests/sdk/requirements.txt installed to run the SDK conformance suite"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let world = world(&tmp.path().join("world.db")).await;
    let permissions: Vec<String> = emulator::KNOWN_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = apps::create_app(&world, CONTOSO, "sdk-conformance", &permissions).unwrap();
    let partner_app = apps::create_app(&world, FABRIKAM, "sdk-conformance", &permissions).unwrap();
    let shop_app = apps::create_app(&world, SHOP, "sdk-conformance", &permissions).unwrap();

    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    let (identity, ca_file) = tls::self_signed(&tmp.path().join("tls"), &hosts).unwrap();
    let mut config = EmulatorConfig { tls: Some(identity.clone()), ..EmulatorConfig::default() };
    config.limits = Limits::off();
    config.contract.strict = true;
    let main = emulator::start(world.clone(), config).await.unwrap();

    // 4 resource units per app and tenant, refilled at 2 per second: a handful of list reads in a row
    // get 429 with `Retry-After: 1`.
    let mut throttled_config = EmulatorConfig { tls: Some(identity.clone()), ..EmulatorConfig::default() };
    throttled_config.limits = Limits { ru_small: Rate::new(4.0, Duration::from_secs(2)), ..Limits::default() };
    throttled_config.limits.retry_after = RetryAfterFormat::Integer;
    let throttled = emulator::start(world.clone(), throttled_config).await.unwrap();

    // Delta tokens that expire after a second (Graph: 7 days), for the expired-token checks.
    let mut expiring_config = EmulatorConfig { tls: Some(identity.clone()), ..EmulatorConfig::default() };
    expiring_config.limits = Limits::off();
    expiring_config.delta_token_ttl = Duration::from_secs(1);
    let expiring = emulator::start(world.clone(), expiring_config).await.unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/conformance.py");
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(&script)
        .env("ENTENTE_EMULATOR_URL", main.url())
        .env("ENTENTE_THROTTLED_URL", throttled.url())
        .env("ENTENTE_EXPIRING_URL", expiring.url())
        .env("ENTENTE_CA_FILE", &ca_file)
        .env("ENTENTE_TENANT_ID", CONTOSO)
        .env("ENTENTE_CLIENT_ID", &app.client_id)
        .env("ENTENTE_CLIENT_SECRET", &app.client_secret)
        .env("ENTENTE_PARTNER_TENANT_ID", FABRIKAM)
        .env("ENTENTE_PARTNER_CLIENT_ID", &partner_app.client_id)
        .env("ENTENTE_PARTNER_CLIENT_SECRET", &partner_app.client_secret)
        .env("ENTENTE_EXTERNAL_TENANT_ID", SHOP)
        .env("ENTENTE_EXTERNAL_CLIENT_ID", &shop_app.client_id)
        .env("ENTENTE_EXTERNAL_CLIENT_SECRET", &shop_app.client_secret)
        .kill_on_drop(true);
    let output = match tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("cannot run {python}: {e}")),
        Err(_) => panic!("{} did not finish within {SCRIPT_TIMEOUT:?}", script.display()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    if !stderr.trim().is_empty() {
        println!("--- stderr\n{stderr}");
    }
    let report = main.contract_report();
    if !report.violations.is_empty() {
        println!("--- contract violations seen by the emulator ({}):", report.violations.len());
        for v in &report.violations {
            println!("{} {} {} {:?}: {}", v.direction, v.method, v.path, v.status, v.findings.join("; "));
        }
    }
    if !report.outside_subset.is_empty() {
        println!("--- operations outside the contract subset ({}):", report.outside_subset.len());
        for o in &report.outside_subset {
            println!("{} {} ×{}", o.method, o.path, o.count);
        }
    }
    // msgraph-sdk's BatchRequestItem serializes `depends_on` where Graph's JSON batching takes `dependsOn`
    // (msgraph-sdk-python 1.65, kiota's snake-case name): Graph ignores the field, and so does the emulator,
    // whose contract check reports it. Every other finding is the emulator's fault.
    let ours: Vec<_> = report
        .violations
        .iter()
        .filter(|v| !(v.path == "/v1.0/$batch" && v.findings.iter().all(|f| f.contains("/depends_on: property \"depends_on\""))))
        .collect();
    assert!(ours.is_empty(), "contract violations other than the SDK's depends_on: {ours:#?}");
    assert!(output.status.success(), "the SDK conformance script failed ({}): see the FAIL lines above", output.status);
    main.shutdown().await;
    throttled.shutdown().await;
    expiring.shutdown().await;
}
